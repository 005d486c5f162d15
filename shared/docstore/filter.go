package docstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/quirehq/quire/shared/job"
)

// Limits of a search filter: how deep $and and $or nest, how many conditions it holds in all,
// how many values one $in or $nin lists.
const (
	maxFilterDepth      = 6
	maxFilterConditions = 64
	maxFilterValues     = 256
	// MaxFilterBytes caps a filter's JSON text.
	MaxFilterBytes = 16 << 10
)

// FilterError is a filter that [ParseFilter] refuses: Path names the offending part
// (filter.$and[1].metadata.year) and Msg what is wrong with it. It wraps [ErrBadQuery].
type FilterError struct {
	Path, Msg string
}

func (e *FilterError) Error() string { return "docstore: bad filter: " + e.Path + ": " + e.Msg }

// Unwrap makes a FilterError an [ErrBadQuery].
func (e *FilterError) Unwrap() error { return ErrBadQuery }

// Filter selects the documents whose chunks a search ranks; it is applied inside each ranking,
// so a filtered search returns K hits whenever K chunks match. The zero Filter (or nil)
// selects every document. Build one with [ParseFilter].
//
// The language is a JSON object whose keys are fields, all of which must match:
//
//	"metadata.<key>": v          the document's metadata value is v (string, number, boolean;
//	                             a string also matches an array holding it)
//	"metadata.<key>": {"$eq": v, "$ne": v, "$in": [v...], "$nin": [v...],
//	                   "$gt": x, "$gte": x, "$lt": x, "$lte": x}
//	                             $ne and $nin also match documents without the key; the order
//	                             operators take a number (numeric order, numbers only) or a
//	                             string (byte order, strings only, e.g. ISO dates)
//	"document_id": n | {"$eq" "$ne" "$in" "$nin" "$gt" "$gte" "$lt" "$lte"}
//	"kind": "document" | "webpage" | {"$eq" "$ne" "$in" "$nin"}
//	"created_at": "RFC 3339 time" | {"$eq" "$ne" "$gt" "$gte" "$lt" "$lte"}
//	"$and": [filter...], "$or": [filter...]
//
// Values only ever reach PostgreSQL as bound parameters.
type Filter struct {
	root filterNode
}

// IsZero reports whether f selects every document.
func (f *Filter) IsZero() bool { return f == nil || f.root == nil }

// filterNode renders a condition on documents alias d, adding its values to args.
type filterNode interface {
	sql(args *sqlArgs) string
}

// sqlArgs collects a statement's bound parameters.
type sqlArgs []any

// add binds v and returns its placeholder.
func (a *sqlArgs) add(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}

type boolNode struct {
	op    string // AND, OR
	nodes []filterNode
}

func (n boolNode) sql(args *sqlArgs) string {
	parts := make([]string, len(n.nodes))
	for i, c := range n.nodes {
		parts[i] = c.sql(args)
	}
	return "(" + strings.Join(parts, " "+n.op+" ") + ")"
}

type notNode struct{ node filterNode }

func (n notNode) sql(args *sqlArgs) string { return "NOT " + n.node.sql(args) }

// leaf is a condition with its SQL built when rendered.
type leaf func(args *sqlArgs) string

func (l leaf) sql(args *sqlArgs) string { return l(args) }

// where renders f as a condition on documents alias d (true for the zero Filter), binding its
// values after those already in args.
func (f *Filter) where(args *sqlArgs) string {
	if f.IsZero() {
		return "true"
	}
	return f.root.sql(args)
}

// ParseFilter compiles a filter's JSON text (see [Filter]); an empty text or {} selects every
// document. Errors are [*FilterError] values naming the offending part.
func ParseFilter(b []byte) (*Filter, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return &Filter{}, nil
	}
	if len(b) > MaxFilterBytes {
		return nil, &FilterError{"filter", fmt.Sprintf("larger than %d bytes", MaxFilterBytes)}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, &FilterError{"filter", "not valid JSON: " + err.Error()}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, &FilterError{"filter", "unexpected data after the filter object"}
	}
	if v == nil {
		return &Filter{}, nil
	}
	p := &filterParser{}
	n, err := p.object("filter", v, 0)
	if err != nil {
		return nil, err
	}
	return &Filter{root: n}, nil
}

type filterParser struct {
	conditions int
}

func (p *filterParser) object(path string, v any, depth int) (filterNode, error) {
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, &FilterError{path, "must be an object"}
	}
	if depth > maxFilterDepth {
		return nil, &FilterError{path, fmt.Sprintf("$and and $or nest deeper than %d", maxFilterDepth)}
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var nodes []filterNode
	for _, k := range keys {
		sub := path + "." + k
		var n filterNode
		var err error
		switch {
		case k == "$and" || k == "$or":
			n, err = p.list(sub, k, obj[k], depth)
		case strings.HasPrefix(k, "metadata."):
			n, err = p.field(sub, metadataField(strings.TrimPrefix(k, "metadata.")), obj[k])
		case k == "document_id":
			n, err = p.field(sub, documentIDField{}, obj[k])
		case k == "kind":
			n, err = p.field(sub, kindField{}, obj[k])
		case k == "created_at":
			n, err = p.field(sub, createdAtField{}, obj[k])
		default:
			err = &FilterError{sub, "unknown field (want metadata.<key>, document_id, kind, created_at, $and or $or)"}
		}
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
	}
	switch len(nodes) {
	case 0:
		if depth > 0 {
			return nil, &FilterError{path, "an empty condition"}
		}
		return nil, nil
	case 1:
		return nodes[0], nil
	}
	return boolNode{"AND", nodes}, nil
}

func (p *filterParser) list(path, op string, v any, depth int) (filterNode, error) {
	items, ok := v.([]any)
	if !ok || len(items) == 0 {
		return nil, &FilterError{path, "needs a non-empty array of filters"}
	}
	nodes := make([]filterNode, len(items))
	for i, it := range items {
		n, err := p.object(fmt.Sprintf("%s[%d]", path, i), it, depth+1)
		if err != nil {
			return nil, err
		}
		nodes[i] = n
	}
	if len(nodes) == 1 {
		return nodes[0], nil
	}
	return boolNode{strings.ToUpper(op[1:]), nodes}, nil
}

// field is one of the fields a filter can test.
type field interface {
	// check validates a value for operator op ("$eq", "$gt", ...), returning it as bound.
	check(op string, v any) (any, error)
	// cmp renders "field op value" for $eq and the order operators.
	cmp(args *sqlArgs, op string, v any) string
	// in renders "field is one of vs".
	in(args *sqlArgs, vs []any) string
	// ops lists the operators the field takes.
	ops() []string
}

var sqlOps = map[string]string{"$eq": "=", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}

func (p *filterParser) field(path string, f field, v any) (filterNode, error) {
	if mf, ok := f.(metadataField); ok && !metadataKey.MatchString(string(mf)) {
		return nil, &FilterError{path, "a metadata key is 1-64 characters of A-Z a-z 0-9 _ . -"}
	}
	ops, ok := v.(map[string]any)
	if !ok {
		ops = map[string]any{"$eq": v}
	}
	if len(ops) == 0 {
		return nil, &FilterError{path, "an empty condition"}
	}
	names := make([]string, 0, len(ops))
	for op := range ops {
		names = append(names, op)
	}
	slices.Sort(names)
	var nodes []filterNode
	for _, op := range names {
		if p.conditions++; p.conditions > maxFilterConditions {
			return nil, &FilterError{path, fmt.Sprintf("the filter has more than %d conditions", maxFilterConditions)}
		}
		if !slices.Contains(f.ops(), op) {
			return nil, &FilterError{path, fmt.Sprintf("operator %q is not one of %s", op, strings.Join(f.ops(), " "))}
		}
		arg := ops[op]
		switch op {
		case "$in", "$nin":
			list, ok := arg.([]any)
			if !ok || len(list) == 0 || len(list) > maxFilterValues {
				return nil, &FilterError{path, fmt.Sprintf("%s needs an array of 1 to %d values", op, maxFilterValues)}
			}
			vals := make([]any, len(list))
			for i, x := range list {
				c, err := f.check("$eq", x)
				if err != nil {
					return nil, &FilterError{fmt.Sprintf("%s.%s[%d]", path, op, i), err.Error()}
				}
				vals[i] = c
			}
			var n filterNode = leaf(func(a *sqlArgs) string { return f.in(a, vals) })
			if op == "$nin" {
				n = notNode{n}
			}
			nodes = append(nodes, n)
		default:
			eqOp := op
			if op == "$ne" {
				eqOp = "$eq"
			}
			c, err := f.check(eqOp, arg)
			if err != nil {
				return nil, &FilterError{path, op + " " + err.Error()}
			}
			var n filterNode = leaf(func(a *sqlArgs) string { return f.cmp(a, eqOp, c) })
			if op == "$ne" {
				n = notNode{n}
			}
			nodes = append(nodes, n)
		}
	}
	if len(nodes) == 1 {
		return nodes[0], nil
	}
	return boolNode{"AND", nodes}, nil
}

// metadataField is metadata.<key>.
type metadataField string

func (metadataField) ops() []string {
	return []string{"$eq", "$ne", "$in", "$nin", "$gt", "$gte", "$lt", "$lte"}
}

func (metadataField) check(op string, v any) (any, error) {
	switch v := v.(type) {
	case string:
		if strings.ContainsRune(v, 0) {
			return nil, errors.New("needs a string without NUL characters")
		}
		return v, nil
	case json.Number:
		return v, nil
	case bool:
		if op == "$eq" {
			return v, nil
		}
	}
	if op == "$eq" {
		return nil, errors.New("needs a string, number or boolean")
	}
	return nil, errors.New("needs a number or a string")
}

// contains is the JSON object {key: v}, for a containment test.
func (f metadataField) contains(v any) string {
	b, _ := json.Marshal(map[string]any{string(f): v})
	return string(b)
}

// alternatives are the objects containing key: v, a string also as an element of an array.
func (f metadataField) alternatives(v any) []string {
	if s, ok := v.(string); ok {
		return []string{f.contains(s), f.contains([]string{s})}
	}
	return []string{f.contains(v)}
}

func (f metadataField) cmp(args *sqlArgs, op string, v any) string {
	if op == "$eq" {
		return "d.metadata @> ANY(" + args.add(f.alternatives(v)) + "::jsonb[])"
	}
	key := args.add(string(f))
	if n, ok := v.(json.Number); ok {
		return "COALESCE(CASE WHEN jsonb_typeof(d.metadata -> " + key + "::text) = 'number' THEN (d.metadata ->> " + key +
			"::text)::numeric " + sqlOps[op] + " " + args.add(n.String()) + "::text::numeric END, false)"
	}
	return "COALESCE(CASE WHEN jsonb_typeof(d.metadata -> " + key + "::text) = 'string' THEN (d.metadata ->> " + key +
		"::text) COLLATE \"C\" " + sqlOps[op] + " " + args.add(v.(string)) + "::text END, false)"
}

func (f metadataField) in(args *sqlArgs, vs []any) string {
	var objs []string
	for _, v := range vs {
		objs = append(objs, f.alternatives(v)...)
	}
	return "d.metadata @> ANY(" + args.add(objs) + "::jsonb[])"
}

// documentIDField is document_id.
type documentIDField struct{}

func (documentIDField) ops() []string {
	return []string{"$eq", "$ne", "$in", "$nin", "$gt", "$gte", "$lt", "$lte"}
}

func (documentIDField) check(_ string, v any) (any, error) {
	if n, ok := v.(json.Number); ok {
		if id, err := strconv.ParseInt(n.String(), 10, 64); err == nil && id > 0 {
			return id, nil
		}
	}
	return nil, errors.New("needs a positive integer document id")
}

func (documentIDField) cmp(args *sqlArgs, op string, v any) string {
	return "d.id " + sqlOps[op] + " " + args.add(v) + "::bigint"
}

func (documentIDField) in(args *sqlArgs, vs []any) string {
	ids := make([]int64, len(vs))
	for i, v := range vs {
		ids[i] = v.(int64)
	}
	return "d.id = ANY(" + args.add(ids) + "::bigint[])"
}

// kindField is kind.
type kindField struct{}

func (kindField) ops() []string { return []string{"$eq", "$ne", "$in", "$nin"} }

func (kindField) check(_ string, v any) (any, error) {
	// A document's kind: the kinds of job that make documents rows.
	if s, ok := v.(string); ok {
		switch job.Kind(s) {
		case job.KindDocument, job.KindWebpage, job.KindCrawl:
			return s, nil
		}
	}
	return nil, errors.New("needs a kind: document, webpage or crawl")
}

func (kindField) cmp(args *sqlArgs, _ string, v any) string {
	return "d.kind = " + args.add(v) + "::text"
}

func (kindField) in(args *sqlArgs, vs []any) string {
	ks := make([]string, len(vs))
	for i, v := range vs {
		ks[i] = v.(string)
	}
	return "d.kind = ANY(" + args.add(ks) + "::text[])"
}

// createdAtField is created_at.
type createdAtField struct{}

func (createdAtField) ops() []string { return []string{"$eq", "$ne", "$gt", "$gte", "$lt", "$lte"} }

func (createdAtField) check(_ string, v any) (any, error) {
	if s, ok := v.(string); ok {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t, nil
		}
	}
	return nil, errors.New("needs an RFC 3339 time such as 2026-01-31T00:00:00Z")
}

func (createdAtField) cmp(args *sqlArgs, op string, v any) string {
	return "d.created_at " + sqlOps[op] + " " + args.add(v) + "::timestamptz"
}

func (createdAtField) in(*sqlArgs, []any) string { return "false" } // not among its ops
