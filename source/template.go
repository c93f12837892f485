package source

import (
	"errors"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/insitu-data/insitu"
)

// MaxTemplateNames is the largest number of names a template may expand to.
const MaxTemplateNames = 1_000_000_000

// Template returns a source over the names that tmpl expands to (see
// [ExpandTemplate]), in bucket, opened through src. Like [Names], it stats
// each name through src when src is a [Stater], yielding a NotFound error
// for each missing one; otherwise objects have Size -1. The names are
// expanded lazily, one at a time.
//
// Besides the template errors of ExpandTemplate, an invalid bucket and a
// template that can expand to an invalid key (such as "a/{x,}/b", which
// gives "a//b") are InvalidArgument errors.
func Template(src insitu.Source, bucket, tmpl string) (insitu.Source, error) {
	if bucket != "" {
		if err := insitu.ValidateBucket(bucket); err != nil {
			return nil, err
		}
	}
	keys, err := ExpandTemplate(tmpl)
	if err != nil {
		return nil, err
	}
	names := func(yield func(insitu.Name) bool) {
		for k := range keys {
			if !yield(insitu.Name{Bucket: bucket, Key: k}) {
				return
			}
		}
	}
	return &nameSource{src: src, names: names}, nil
}

// ExpandTemplate returns the keys that tmpl expands to, in the manner of
// AIStore's templates and shell brace expansion:
//
//   - text outside braces is copied: a template without braces is one key;
//   - {0..9} is a range of integers; {0..100..5} has a step of 5; when a
//     bound has a leading zero, the numbers are zero-padded to the width of
//     the wider bound: shard-{0000..0999}.tar gives shard-0000.tar,
//     shard-0001.tar, ... shard-0999.tar;
//   - {a,b,c} is a list; an item may be empty ({a,} gives a and "");
//   - several groups give their cartesian product, the leftmost group
//     varying slowest.
//
// Groups do not nest and braces cannot be escaped. The expansion is lazy:
// no more than one key is held at a time. A template with an unmatched
// brace, an empty group or one that is neither a range nor a list, a
// non-numeric bound, a start after the end, a step under 1, more than
// [MaxTemplateNames] keys, or a key that would not be a valid [insitu.Name]
// is an InvalidArgument error naming the problem.
func ExpandTemplate(tmpl string) (iter.Seq[string], error) {
	parts, err := parseTemplate(tmpl)
	if err != nil {
		return nil, err
	}
	if err := checkKeys(tmpl, parts); err != nil {
		return nil, err
	}
	return func(yield func(string) bool) {
		var rec func(i int, b []byte) bool
		rec = func(i int, b []byte) bool {
			if i == len(parts) {
				return yield(string(b))
			}
			p := &parts[i]
			for j := range p.count() {
				if !rec(i+1, p.appendAt(b, j)) {
					return false
				}
			}
			return true
		}
		rec(0, make([]byte, 0, 128))
	}, nil
}

// part is a piece of a template: a literal (a list of one), a list, or a
// range of n integers from start by step, zero-padded to width.
type part struct {
	alts []string // literal or list; nil for a range

	start, step, n uint64
	width          int
}

func (p *part) count() uint64 {
	if p.alts != nil {
		return uint64(len(p.alts))
	}
	return p.n
}

// appendAt appends the j-th value of the part to b.
func (p *part) appendAt(b []byte, j uint64) []byte {
	if p.alts != nil {
		return append(b, p.alts[j]...)
	}
	var d [20]byte
	digits := strconv.AppendUint(d[:0], p.start+j*p.step, 10)
	for k := len(digits); k < p.width; k++ {
		b = append(b, '0')
	}
	return append(b, digits...)
}

// maxLen returns the length of the part's longest value.
func (p *part) maxLen() int {
	if p.alts == nil {
		return len(p.appendAt(nil, p.n-1))
	}
	m := 0
	for _, a := range p.alts {
		m = max(m, len(a))
	}
	return m
}

func badTemplate(tmpl, format string, args ...any) error {
	return insitu.Errorf(insitu.InvalidArgument, "template %q: %s", tmpl, fmt.Sprintf(format, args...))
}

// parseTemplate splits tmpl into parts and checks the groups and the
// number of keys.
func parseTemplate(tmpl string) ([]part, error) {
	if !utf8.ValidString(tmpl) {
		return nil, badTemplate(tmpl, "not valid UTF-8")
	}
	if strings.IndexByte(tmpl, 0) >= 0 {
		return nil, badTemplate(tmpl, "contains a NUL byte")
	}
	var parts []part
	total := uint64(1)
	for i := 0; i < len(tmpl); {
		j := strings.IndexAny(tmpl[i:], "{}")
		if j < 0 {
			parts = append(parts, part{alts: []string{tmpl[i:]}})
			break
		}
		open := i + j
		if tmpl[open] == '}' {
			return nil, badTemplate(tmpl, "unmatched '}' at byte %d", open)
		}
		if open > i {
			parts = append(parts, part{alts: []string{tmpl[i:open]}})
		}
		k := strings.IndexAny(tmpl[open+1:], "{}")
		if k < 0 {
			return nil, badTemplate(tmpl, "unmatched '{' at byte %d", open)
		}
		end := open + 1 + k
		if tmpl[end] == '{' {
			return nil, badTemplate(tmpl, "'{' at byte %d inside the group opened at byte %d: groups do not nest", end, open)
		}
		p, err := parseGroup(tmpl[open+1 : end])
		if err != nil {
			return nil, badTemplate(tmpl, "%s", err)
		}
		if c := p.count(); total > MaxTemplateNames/c {
			return nil, badTemplate(tmpl, "expands to over %d names", MaxTemplateNames)
		}
		total *= p.count()
		parts = append(parts, p)
		i = end + 1
	}
	if len(parts) == 0 {
		parts = append(parts, part{alts: []string{""}}) // caught as an empty key
	}
	return parts, nil
}

// parseGroup parses the body of a {group}. Its errors are plain: the
// caller names the template.
func parseGroup(body string) (part, error) {
	switch {
	case body == "":
		return part{}, fmt.Errorf("empty group {}")
	case strings.Contains(body, ","):
		return part{alts: strings.Split(body, ",")}, nil
	case !strings.Contains(body, ".."):
		return part{}, fmt.Errorf("group {%s} is neither a range (such as {0..9}) nor a list (such as {a,b})", body)
	}
	f := strings.Split(body, "..")
	if len(f) > 3 {
		return part{}, fmt.Errorf("range {%s} has more than start..end..step", body)
	}
	var v [3]uint64
	v[2] = 1
	for i, s := range f {
		what := [...]string{"start", "end", "step"}[i]
		n, err := parseUint(s)
		if err != nil {
			return part{}, fmt.Errorf("range {%s}: %s %q %v", body, what, s, err)
		}
		v[i] = n
	}
	start, end, step := v[0], v[1], v[2]
	switch {
	case step == 0:
		return part{}, fmt.Errorf("range {%s}: step must be at least 1", body)
	case start > end:
		return part{}, fmt.Errorf("range {%s}: start %d is after end %d", body, start, end)
	}
	p := part{start: start, step: step, n: (end-start)/step + 1}
	if padded(f[0]) || padded(f[1]) {
		p.width = max(len(f[0]), len(f[1]))
	}
	return p, nil
}

// parseUint parses a non-empty string of at most 18 decimal digits.
func parseUint(s string) (uint64, error) {
	if s == "" || len(s) > 18 || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("is not an integer of 1 to 18 digits")
	}
	return strconv.ParseUint(s, 10, 64)
}

func padded(s string) bool { return len(s) > 1 && s[0] == '0' }

// Key-checking states: what the key's last segment is so far.
const (
	segEmpty = iota // nothing yet: the key's start, or just after a "/"
	segDot          // "."
	segDots         // ".."
	segOK           // anything else: a valid segment so far
)

// checkKeys reports whether every key parts expand to is a valid
// insitu.Name key, without expanding them: it follows, for each possible
// state of the last segment, one key prefix that reaches it. Ranges give
// non-empty digit strings, which always make a segment valid, so only
// literals and lists need to be walked through.
func checkKeys(tmpl string, parts []part) error {
	n := 0
	for i := range parts {
		n += parts[i].maxLen()
	}
	if n > insitu.MaxKeyLen {
		return badTemplate(tmpl, "expands to keys of up to %d bytes, over the limit of %d", n, insitu.MaxKeyLen)
	}
	var wit [4]*string // a key prefix reaching each state, nil when none does
	empty := ""
	wit[segEmpty] = &empty
	for i := range parts {
		p := &parts[i]
		var next [4]*string
		for st, w := range wit {
			if w == nil {
				continue
			}
			if p.alts == nil {
				if next[segOK] == nil {
					s := string(p.appendAt([]byte(*w), 0))
					next[segOK] = &s
				}
				continue
			}
			for _, a := range p.alts {
				s, bad := step(st, a)
				k := *w + a
				if bad {
					return invalidKey(tmpl, complete(k, parts[i+1:]))
				}
				if next[s] == nil {
					next[s] = &k
				}
			}
		}
		wit = next
	}
	for st, w := range wit {
		if w != nil && st != segOK {
			return invalidKey(tmpl, *w)
		}
	}
	return nil
}

// step runs a from state st, and reports the state reached, or whether a
// complete segment was bad.
func step(st int, a string) (int, bool) {
	for i := 0; i < len(a); i++ {
		switch {
		case a[i] == '/':
			if st != segOK {
				return st, true
			}
			st = segEmpty
		case a[i] == '.' && st == segEmpty:
			st = segDot
		case a[i] == '.' && st == segDot:
			st = segDots
		default:
			st = segOK
		}
	}
	return st, false
}

// complete appends the first value of each remaining part to the key
// prefix k.
func complete(k string, rest []part) string {
	b := []byte(k)
	for i := range rest {
		b = rest[i].appendAt(b, 0)
	}
	return string(b)
}

func invalidKey(tmpl, key string) error {
	msg := "invalid"
	if err := (insitu.Name{Key: key}).Validate(); err != nil {
		if e, ok := errors.AsType[*insitu.Error](err); ok {
			msg = e.Msg
		}
	}
	return badTemplate(tmpl, "expands to the invalid key %q: %s", key, msg)
}
