import sys

from emrops.cli import main

sys.exit(main())
