// Command argocd-lua runs an Argo CD resource-customization script (health check, action
// discovery, action) the way argocd-server and the application controller run one from argocd-cm,
// so emrops' scripts in deploy/argocd/ are tested against Argo CD's real runtime rather than a
// full Lua standard library.
//
// What it mirrors (Argo CD util/lua, read at argoproj/argo-cd 37ee0097cf85, gopher-lua v1.1.2 as
// pinned in Argo CD's go.mod):
//
//   - The Lua VM is gopher-lua (Lua 5.1) created with SkipOpenLibs, then only the package, base and
//     table libraries are opened (lua.go, runLuaWithResourceActionParameters, lines 133-147). No
//     string, math, io, coroutine, channel or debug library, so no string methods either.
//   - os: Argo CD's "safe os" opener re-registers the already-loaded "table" module (oslib_safe.go
//     OpenSafeOs, line 17), which gopher-lua's RegisterModule turns into a no-op: there is no global
//     `os`. The only way in is `require("os")`, served by a preloaded module holding exactly
//     os.time and os.date (lua.go line 157; oslib_safe.go lines 22-31).
//   - os.date: a leading "!" selects UTC only when no time argument is given; a time argument
//     replaces the time with one in the server's local zone, dropping the "!" (oslib_safe.go
//     lines 71-101). Only the conversions Argo CD's strftime knows are expanded (lines 103-133).
//   - os.time: with a table, fields default as Argo CD's do and the time is read in the local zone.
//   - Each run has a one-second deadline (lua.go lines 159-161); `obj` and `actionParams` are globals
//     (lines 163-172); the object reaches Lua as Argo CD's decodeValue builds it (lines 682-715),
//     from JSON decoded the way Kubernetes' unstructured objects are (integers as int64).
//   - Results are encoded to JSON with gopher-json's rules (numbers as floats, an empty table as
//     [], a table with integer keys 1..n as an array, mixed keys an error) and then read as Argo CD
//     reads them: health (ExecuteHealthLua, lines 213-246), discovery
//     (ExecuteResourceActionDiscovery, lines 412-493), action (ExecuteResourceAction and
//     cleanReturnedObj, lines 288-410).
//
// All of this is written here from that reading; none of Argo CD's code is used or copied. The
// harness depends on github.com/yuin/gopher-lua only.
//
// Usage: the request on standard input, the response on standard output, exit status 0 whether
// the script worked or not (a script error is a response); 2 for a malformed request.
//
//	{"mode": "health" | "discovery" | "action" | "eval", "script": "<Lua source>", "obj": {...}}
//	-> {"result": ...} or {"error": "..."}
//
// A JSON array of requests gets an array of responses. "eval" is not an Argo CD entry point: it
// returns whatever the script returns, encoded as above, to inspect the environment. Or, by hand:
//
//	argocd-lua health deploy/argocd/health.lua < object.json
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // TZ=Asia/Shanghai works on a machine without a zoneinfo database

	lua "github.com/yuin/gopher-lua"
)

// scriptTimeout is Argo CD's deadline for one script.
const scriptTimeout = time.Second

type request struct {
	Mode   string          `json:"mode"`
	Script string          `json:"script"`
	Obj    json.RawMessage `json:"obj"`
}

type response struct {
	Result any    `json:"result,omitempty"`
	Error  string `json:"error,omitempty"`
}

func main() {
	out, err := serve(os.Args[1:], os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "argocd-lua:", err)
		os.Exit(2)
	}
	os.Stdout.Write(append(out, '\n'))
}

func serve(args []string, stdin io.Reader) ([]byte, error) {
	input, err := io.ReadAll(stdin)
	if err != nil {
		return nil, err
	}
	switch {
	case len(args) == 2:
		script, err := os.ReadFile(args[1])
		if err != nil {
			return nil, err
		}
		return json.MarshalIndent(handle(request{Mode: args[0], Script: string(script), Obj: input}), "", "  ")
	case len(args) != 0:
		return nil, errors.New("usage: argocd-lua [MODE SCRIPT < object.json] (or a JSON request on stdin)")
	}
	trimmed := bytes.TrimSpace(input)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		var requests []request
		if err := json.Unmarshal(trimmed, &requests); err != nil {
			return nil, fmt.Errorf("reading requests: %w", err)
		}
		responses := make([]response, len(requests))
		for i, r := range requests {
			responses[i] = handle(r)
		}
		return json.Marshal(responses)
	}
	var r request
	if err := json.Unmarshal(trimmed, &r); err != nil {
		return nil, fmt.Errorf("reading the request: %w", err)
	}
	return json.Marshal(handle(r))
}

func handle(r request) response {
	result, err := run(r)
	if err != nil {
		return response{Error: err.Error()}
	}
	return response{Result: result}
}

func run(r request) (any, error) {
	obj, err := decodeObject(r.Obj)
	if err != nil {
		return nil, err
	}
	switch r.Mode {
	case "health":
		return health(r.Script, obj)
	case "discovery":
		return discovery(r.Script, obj)
	case "action":
		return action(r.Script, obj)
	case "eval":
		value, err := execute(r.Script, obj)
		if err != nil {
			return nil, err
		}
		return encode(value)
	}
	return nil, fmt.Errorf("unknown mode %q (health, discovery, action, eval)", r.Mode)
}

// --- the object, as Kubernetes decodes it and Argo CD hands it to Lua -------------------------

// decodeObject reads JSON as apimachinery's unstructured decoding does: integers become int64,
// other numbers float64.
func decodeObject(raw json.RawMessage) (map[string]any, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return map[string]any{}, nil
	}
	decoder := json.NewDecoder(bytes.NewReader(raw))
	decoder.UseNumber()
	var value any
	if err := decoder.Decode(&value); err != nil {
		return nil, fmt.Errorf("reading obj: %w", err)
	}
	obj, ok := integers(value).(map[string]any)
	if !ok {
		return nil, errors.New("obj must be a JSON object")
	}
	return obj, nil
}

func integers(value any) any {
	switch v := value.(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i
		}
		f, _ := v.Float64()
		return f
	case []any:
		for i := range v {
			v[i] = integers(v[i])
		}
	case map[string]any:
		for k := range v {
			v[k] = integers(v[k])
		}
	}
	return value
}

// toLua converts a decoded object into Lua values: numbers, strings and booleans as themselves,
// arrays as tables indexed from 1, objects as tables keyed by string, null as nil.
func toLua(L *lua.LState, value any) lua.LValue {
	switch v := value.(type) {
	case bool:
		return lua.LBool(v)
	case int64:
		return lua.LNumber(v)
	case float64:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case []any:
		table := L.CreateTable(len(v), 0)
		for _, item := range v {
			table.Append(toLua(L, item))
		}
		return table
	case map[string]any:
		table := L.CreateTable(0, len(v))
		for key, item := range v {
			table.RawSetH(lua.LString(key), toLua(L, item))
		}
		return table
	}
	return lua.LNil
}

// --- the VM ------------------------------------------------------------------------------------

// newState is a Lua state with exactly what Argo CD opens for argocd-cm scripts.
func newState() (*lua.LState, error) {
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		// Argo CD's os opener comes next and adds nothing (see the package comment): no global os.
	} {
		if err := L.CallByParam(lua.P{Fn: L.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			L.Close()
			return nil, err
		}
	}
	L.PreloadModule(lua.OsLibName, func(L *lua.LState) int {
		module := L.NewTable()
		module.RawSetString("time", L.NewFunction(osTime))
		module.RawSetString("date", L.NewFunction(osDate))
		L.Push(module)
		return 1
	})
	return L, nil
}

// execute runs script with obj as the global `obj` and returns what the script returned (the
// top of the stack, as Argo CD reads it).
func execute(script string, obj map[string]any) (lua.LValue, error) {
	L, err := newState()
	if err != nil {
		return nil, err
	}
	defer L.Close()
	ctx, cancel := context.WithTimeout(context.Background(), scriptTimeout)
	defer cancel()
	L.SetContext(ctx)
	L.SetGlobal("actionParams", L.NewTable())
	L.SetGlobal("obj", toLua(L, obj))
	fn, err := L.LoadString(script)
	if err == nil {
		L.Push(fn)
		err = L.PCall(0, lua.MultRet, nil)
	}
	if err != nil {
		var apiErr *lua.ApiError
		if errors.As(err, &apiErr) && apiErr.Type == lua.ApiErrorRun {
			apiErr.StackTrace = "" // Argo CD drops the trace from what users see
		}
		return nil, err
	}
	return L.Get(-1), nil
}

// --- the safe os module ------------------------------------------------------------------------

func osTime(L *lua.LState) int {
	if L.GetTop() == 0 {
		L.Push(lua.LNumber(time.Now().Unix()))
		return 1
	}
	fields := L.CheckTable(1)
	field := func(name string, fallback int) int {
		if n, ok := fields.RawGetString(name).(lua.LNumber); ok {
			return int(n)
		}
		return fallback
	}
	t := time.Date(field("year", -1), time.Month(field("month", -1)), field("day", -1),
		field("hour", 12), field("min", 0), field("sec", 0), 0, time.Local)
	L.Push(lua.LNumber(t.Unix()))
	return 1
}

func osDate(L *lua.LState) int {
	t := time.Now()
	format := "%c"
	if L.GetTop() >= 1 {
		format = L.CheckString(1)
		if strings.HasPrefix(format, "!") {
			t = time.Now().UTC()
			format = strings.TrimLeft(format, "!")
		}
		if L.GetTop() >= 2 {
			// Argo CD's behaviour: the given time, in the local zone, whatever "!" asked for.
			t = time.Unix(L.CheckInt64(2), 0)
		}
		if strings.HasPrefix(format, "*t") {
			fields := L.NewTable()
			for name, value := range map[string]int{
				"year": t.Year(), "month": int(t.Month()), "day": t.Day(), "hour": t.Hour(),
				"min": t.Minute(), "sec": t.Second(), "wday": int(t.Weekday()) + 1, "yday": 0,
			} {
				fields.RawSetString(name, lua.LNumber(value))
			}
			fields.RawSetString("isdst", lua.LFalse)
			L.Push(fields)
			return 1
		}
	}
	L.Push(lua.LString(strftime(t, format)))
	return 1
}

// goLayouts is what each strftime conversion Argo CD supports becomes, as a Go time layout,
// including its quirks: %a is the layout "mon" (printed as is) and %x is a time with slashes.
var goLayouts = map[byte]string{
	'a': "mon", 'A': "Monday", 'b': "Jan", 'B': "January", 'c': "02 Jan 06 15:04 MST",
	'd': "02", 'F': "2006-01-02", 'H': "15", 'I': "03", 'm': "01", 'M': "04", 'p': "PM",
	'P': "pm", 'S': "05", 'x': "15/04/05", 'X': "15:04:05", 'y': "06", 'Y': "2006",
	'z': "-0700", 'Z': "MST",
}

// strftime expands %-conversions: "%%" is a percent sign, %w the weekday number, an unknown
// conversion is kept as written, and a "%" that ends the format is kept.
func strftime(t time.Time, format string) string {
	var out strings.Builder
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' || i == len(format)-1 {
			out.WriteByte(c)
			continue
		}
		i++
		conversion := format[i]
		switch layout, known := goLayouts[conversion]; {
		case conversion == '%':
			out.WriteByte('%')
		case conversion == 'w':
			out.WriteString(strconv.Itoa(int(t.Weekday())))
		case known:
			out.WriteString(t.Format(layout))
		default:
			out.WriteByte('%')
			out.WriteByte(conversion)
		}
	}
	return out.String()
}

// --- results, as Argo CD reads them ------------------------------------------------------------

// encode turns a Lua value into JSON-ready Go values under gopher-json's rules. A table met a
// second time anywhere in the value is an error, as in gopher-json (it never forgets a table).
func encode(value lua.LValue) (any, error) {
	return encodeValue(value, map[*lua.LTable]bool{})
}

func encodeValue(value lua.LValue, seen map[*lua.LTable]bool) (any, error) {
	switch v := value.(type) {
	case lua.LBool:
		return bool(v), nil
	case lua.LNumber:
		return float64(v), nil
	case lua.LString:
		return string(v), nil
	case *lua.LNilType:
		return nil, nil
	case *lua.LTable:
		if seen[v] {
			return nil, errors.New("cannot encode recursively nested tables to JSON")
		}
		seen[v] = true
		key, item := v.Next(lua.LNil)
		switch key.Type() {
		case lua.LTNil:
			return []any{}, nil
		case lua.LTNumber:
			array := []any{}
			for want := lua.LNumber(1); key != lua.LNil; want++ {
				if key.Type() != lua.LTNumber {
					return nil, errors.New("cannot encode mixed or invalid key types")
				}
				if key != want {
					return nil, errors.New("cannot encode sparse array")
				}
				encoded, err := encodeValue(item, seen)
				if err != nil {
					return nil, err
				}
				array = append(array, encoded)
				key, item = v.Next(key)
			}
			return array, nil
		case lua.LTString:
			object := map[string]any{}
			for key != lua.LNil {
				if key.Type() != lua.LTString {
					return nil, errors.New("cannot encode mixed or invalid key types")
				}
				encoded, err := encodeValue(item, seen)
				if err != nil {
					return nil, err
				}
				object[key.String()] = encoded
				key, item = v.Next(key)
			}
			return object, nil
		}
		return nil, errors.New("cannot encode mixed or invalid key types")
	}
	return nil, fmt.Errorf("cannot encode %s to JSON", value.Type())
}

// asJSON encodes value and returns its JSON text.
func asJSON(value lua.LValue) ([]byte, error) {
	encoded, err := encode(value)
	if err != nil {
		return nil, err
	}
	return json.Marshal(encoded)
}

func notATable(value lua.LValue) error {
	return fmt.Errorf("expect table output from Lua script, not %s", value.Type())
}

// executeTable runs a script that must return a table (discovery and actions) and gives that
// table as JSON.
func executeTable(script string, obj map[string]any) ([]byte, error) {
	value, err := execute(script, obj)
	if err != nil {
		return nil, err
	}
	if value.Type() != lua.LTTable {
		return nil, notATable(value)
	}
	return asJSON(value)
}

type healthStatus struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

var healthCodes = map[string]bool{
	"Unknown": true, "Progressing": true, "Suspended": true, "Healthy": true, "Degraded": true, "Missing": true,
}

func health(script string, obj map[string]any) (any, error) {
	value, err := execute(script, obj)
	if err != nil {
		return nil, err
	}
	switch value.Type() {
	case lua.LTNil:
		return healthStatus{}, nil
	case lua.LTTable:
	default:
		return nil, notATable(value)
	}
	data, err := asJSON(value)
	if err != nil {
		return nil, err
	}
	var hs healthStatus
	if err := json.Unmarshal(data, &hs); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) { // e.g. an empty table, which encodes as []
			return healthStatus{}, nil
		}
		return nil, err
	}
	if !healthCodes[hs.Status] {
		return healthStatus{Status: "Unknown", Message: "Lua returned an invalid health status"}, nil
	}
	return hs, nil
}

type actionParam struct {
	Name    string `json:"name,omitempty"`
	Value   string `json:"value,omitempty"`
	Type    string `json:"type,omitempty"`
	Default string `json:"default,omitempty"`
}

type resourceAction struct {
	Name        string        `json:"name"`
	Params      []actionParam `json:"params,omitempty"`
	Disabled    bool          `json:"disabled"`
	IconClass   string        `json:"iconClass,omitempty"`
	DisplayName string        `json:"displayName,omitempty"`
}

func discovery(script string, obj map[string]any) (any, error) {
	data, err := executeTable(script, obj)
	if err != nil {
		return nil, err
	}
	actions := []resourceAction{}
	if string(data) == "[]" {
		return actions, nil
	}
	var table map[string]any
	if err := json.Unmarshal(data, &table); err != nil {
		return nil, fmt.Errorf("error unmarshaling action table: %w", err)
	}
	for name, entry := range table {
		a := resourceAction{Name: name}
		if fields, ok := entry.(map[string]any); ok {
			disabled, _ := fields["disabled"].(bool) // anything but a boolean leaves it enabled
			a.Disabled = disabled
		}
		if _, empty := entry.([]any); !empty {
			raw, err := json.Marshal(entry)
			if err != nil {
				return nil, err
			}
			if err := json.Unmarshal(raw, &a); err != nil {
				return nil, fmt.Errorf("error unmarshaling resource action: %w", err)
			}
		}
		actions = append(actions, a)
	}
	sort.Slice(actions, func(i, j int) bool { return actions[i].Name < actions[j].Name })
	return actions, nil
}

type impactedResource struct {
	Resource  map[string]any `json:"resource"`
	Operation string         `json:"operation"`
}

func action(script string, obj map[string]any) (any, error) {
	data, err := executeTable(script, obj)
	if err != nil {
		return nil, err
	}
	var impacted []impactedResource
	if data[0] == '[' {
		var raw []struct {
			Resource  json.RawMessage `json:"resource"`
			Operation string          `json:"operation"`
		}
		if err := json.Unmarshal(data, &raw); err != nil {
			return nil, err
		}
		for _, r := range raw {
			if r.Operation != "create" && r.Operation != "patch" {
				return nil, fmt.Errorf("unsupported operation: %q", r.Operation)
			}
			resource, err := unstructuredObject(r.Resource)
			if err != nil {
				return nil, err
			}
			impacted = append(impacted, impactedResource{Resource: resource, Operation: r.Operation})
		}
	} else {
		resource, err := unstructuredObject(data)
		if err != nil {
			return nil, err
		}
		impacted = append(impacted, impactedResource{Resource: resource, Operation: "patch"})
	}
	for _, r := range impacted {
		if r.Operation == "patch" && r.Resource != nil {
			keepEmptyObjects(r.Resource, obj)
		}
	}
	return impacted, nil
}

// unstructuredObject reads a returned object as Kubernetes' unstructured decoding does: it must
// have a kind.
func unstructuredObject(data []byte) (map[string]any, error) {
	if text := string(bytes.TrimSpace(data)); text == "" || text == "null" {
		return nil, nil
	}
	object, err := decodeObject(data)
	if err != nil {
		return nil, err
	}
	if kind, _ := object["kind"].(string); kind == "" {
		return nil, fmt.Errorf("Object 'Kind' is missing in '%s'", data)
	}
	return object, nil
}

// keepEmptyObjects undoes Lua's one ambiguity: an empty table encodes as [], so where the
// original object had a map, an empty array in the result becomes an empty map again. Lists are
// followed element by element as far as both lists go.
func keepEmptyObjects(result, original map[string]any) {
	for key, was := range original {
		now, ok := result[key]
		if !ok {
			continue
		}
		switch n := now.(type) {
		case map[string]any:
			if w, ok := was.(map[string]any); ok {
				keepEmptyObjects(n, w)
			}
		case []any:
			switch w := was.(type) {
			case map[string]any:
				if len(n) == 0 {
					result[key] = map[string]any{}
				}
			case []any:
				keepEmptyObjectsInList(n, w)
			}
		}
	}
}

func keepEmptyObjectsInList(result, original []any) {
	for i := range result {
		if i >= len(original) {
			return
		}
		switch n := result[i].(type) {
		case map[string]any:
			if w, ok := original[i].(map[string]any); ok {
				keepEmptyObjects(n, w)
			}
		case []any:
			if w, ok := original[i].([]any); ok {
				keepEmptyObjectsInList(n, w)
			}
		}
	}
}
