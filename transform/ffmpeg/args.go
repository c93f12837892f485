package ffmpeg

import (
	"slices"
	"strconv"
	"strings"

	"github.com/insitu-data/insitu"
)

// MaxArgsLen is the longest Input.Args string [WAV] and [Audio] accept,
// in bytes.
// Every allowed option with its longest value fits in a tenth of it.
const MaxArgsLen = 512

// An Arg is one ffmpeg option that an object's [insitu.Input.Args] (a
// job's or a run's args) may pass to a [WAV] or an [Audio] transcoder,
// with the values it accepts. [AllowedArgs] and [AllowedAudioArgs] list
// them. An Arg only sets a property of the output (channels, sample rate,
// sample format, bitrate, compression level): the package writes
// ffmpeg's arguments itself from those properties, so no args string can
// name a file, a protocol, a filter or a second output.
type Arg struct {
	// Name is the option as a job writes it, with its dash, such as "-ac".
	Name string
	// Aliases are other spellings of the same option, such as "-acodec"
	// for "-c:a".
	Aliases []string
	// Values says which values the option accepts, such as "1 to 8" or
	// "one of u8, s16, s32, flt, dbl".
	Values string
	// Doc says what the option sets.
	Doc string

	sets string                         // the property it sets, for "given twice"
	set  func(v string, o *output) bool // parses v into o; false: v is not accepted
}

// String returns the option as a usage line, such as
// "-ac (output channels): 1 to 8".
func (a Arg) String() string {
	return strings.Join(a.names(), ", ") + " (" + a.Doc + "): " + a.Values
}

// names returns the spellings of a.
func (a Arg) names() []string { return append([]string{a.Name}, a.Aliases...) }

// codecInfo is a WAV sample encoding: its ffmpeg codec name, the
// -sample_fmt name of the same encoding ("" for none), and the format tag
// and bits per sample of its WAV header.
type codecInfo struct {
	name, sampleFmt string
	format, bits    int
}

// codecs returns the WAV sample encodings, in the order of [AllowedArgs].
func codecs() []codecInfo {
	return []codecInfo{
		{"pcm_u8", "u8", 1, 8},
		{"pcm_s16le", "s16", 1, 16},
		{"pcm_s24le", "", 1, 24},
		{"pcm_s32le", "s32", 1, 32},
		{"pcm_f32le", "flt", 3, 32},
		{"pcm_f64le", "dbl", 3, 64},
	}
}

// argSampleRates returns the sample rates an args string may ask for.
func argSampleRates() []int {
	return []int{8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000, 176400, 192000}
}

// AllowedArgs returns the ffmpeg options an object's Input.Args may pass to
// a [WAV] transcoder (unless [WAVOptions].AllowArgs narrows them), in a new
// slice:
//
//	-ac N                       output channels: 1 to 8
//	-ar HZ                      output sample rate: one of 8000, 11025, 12000,
//	                            16000, 22050, 24000, 32000, 44100, 48000,
//	                            88200, 96000, 176400, 192000
//	-sample_fmt F               sample format: one of u8, s16, s32, flt, dbl
//	-c:a C (-acodec, -codec:a)  sample encoding: one of pcm_u8, pcm_s16le,
//	                            pcm_s24le, pcm_s32le, pcm_f32le, pcm_f64le
//
// -sample_fmt and -c:a set the same thing (u8 is pcm_u8, s16 pcm_s16le,
// s32 pcm_s32le, flt pcm_f32le, dbl pcm_f64le); an args string may give
// one of them. See [CheckArgs] for the syntax of an args string.
func AllowedArgs() []Arg {
	var fmts, names []string
	for _, c := range codecs() {
		names = append(names, c.name)
		if c.sampleFmt != "" {
			fmts = append(fmts, c.sampleFmt)
		}
	}
	return []Arg{channelsArg(8), rateArg(argSampleRates()), {
		Name:   "-sample_fmt",
		Values: "one of " + strings.Join(fmts, ", "),
		Doc:    "sample format, the same as -c:a",
		sets:   "sample format",
		set: func(v string, o *output) bool {
			for _, c := range codecs() {
				if c.sampleFmt != "" && c.sampleFmt == v {
					o.codec = c.name
					return true
				}
			}
			return false
		},
	}, {
		Name:    "-c:a",
		Aliases: []string{"-acodec", "-codec:a"},
		Values:  "one of " + strings.Join(names, ", "),
		Doc:     "sample encoding, the same as -sample_fmt",
		sets:    "sample format",
		set: func(v string, o *output) bool {
			if knownCodec(v) {
				o.codec = v
				return true
			}
			return false
		},
	}}
}

// CheckArgs reports whether args is an args string that a [WAV] transcoder
// with the default options accepts, without running ffmpeg: a coordinator
// or a command line can refuse a job's bad args before any object is read.
// The error is what Transform returns for an object with these Input.Args.
//
// An args string is a list of options with their values, such as
// "-ac 1 -ar 16000", separated by spaces or tabs. There is no quoting and
// no character is special: a quote is part of the word it is in. Each
// option must be one of [AllowedArgs] and is followed by its value as the
// next word; an option may be given once (and one of -sample_fmt and -c:a,
// which set the same thing). A transcoder whose [WAVOptions].AllowArgs
// allow fewer options refuses the others: check against it with
// [WAV.WithArgs]. An
// empty (or blank) args string keeps the defaults. Anything else is
// refused with an [insitu.InvalidArgument] error that names the offending
// word: a word that is not an allowed option (an input or output file, a
// URL, "-i", "-f", "-y", "-af", "-filter_complex", …), a value out of
// range, a missing value, an option given twice, a control character
// (newline, NUL, …), or a string longer than [MaxArgsLen] bytes.
func CheckArgs(args string) error {
	_, err := parseArgs(args, defaultOutput(), wavArgs(AllowedArgs()))
	return err
}

// defaultOutput is the output of a WAV transcoder with the default options.
func defaultOutput() output {
	return output{format: "wav", channels: 2, sampleRate: 44100, codec: "pcm_s16le"}
}

// allowList is what an args string may set.
type allowList struct {
	allow []Arg  // the options it may pass
	all   []Arg  // every option of the output's format, a superset of allow
	opts  string // the options type whose AllowArgs chose allow among all
}

// wavArgs is the allow-list of a WAV transcoder that allows allow.
func wavArgs(allow []Arg) allowList {
	return allowList{allow: allow, all: AllowedArgs(), opts: "WAVOptions"}
}

// parseArgs applies the options in args to o, accepting only those of
// l.allow, and returns the result; see [CheckArgs].
func parseArgs(args string, o output, l allowList) (output, error) {
	allow := l.allow
	if len(args) > MaxArgsLen {
		return o, argsError("args are %d bytes long; at most %d", len(args), MaxArgsLen)
	}
	for i := 0; i < len(args); i++ {
		if c := args[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return o, argsError("control character %q at byte %d; args are one line of words separated by spaces", c, i)
		}
	}
	words := strings.FieldsFunc(args, func(r rune) bool { return r == ' ' || r == '\t' })
	seen := map[string]string{} // property -> the option that set it
	for i := 0; i < len(words); i++ {
		w := words[i]
		a, ok := findArg(allow, w)
		if !ok {
			return o, argsError("%s is not an allowed option%s; allowed: %s", quote(w), notAllowedWhy(w, l), allowedNames(allow))
		}
		if by, dup := seen[a.sets]; dup {
			if by == w {
				return o, argsError("%s is given twice", quote(w))
			}
			return o, argsError("%s sets the %s, which %s already set", quote(w), a.sets, by)
		}
		seen[a.sets] = w
		if i+1 == len(words) {
			return o, argsError("%s needs a value: %s", quote(w), a.Values)
		}
		i++
		if !a.set(words[i], &o) {
			return o, argsError("%s %s: the value is not accepted; want %s", quote(w), quote(words[i]), a.Values)
		}
	}
	return o, nil
}

// findArg returns the Arg of allow that has the spelling name.
func findArg(allow []Arg, name string) (Arg, bool) {
	for _, a := range allow {
		if slices.Contains(a.names(), name) {
			return a, true
		}
	}
	return Arg{}, false
}

// notAllowedWhy adds a hint to the error for a word that is not an allowed
// option.
func notAllowedWhy(w string, l allowList) string {
	if _, known := findArg(l.all, w); known {
		return " here (this transcoder's " + l.opts + ".AllowArgs leave it out)"
	}
	if !strings.HasPrefix(w, "-") || w == "-" {
		return " (args name no input, output, URL or filter, only options)"
	}
	return ""
}

// allowedNames lists the options of allow, or says there are none.
func allowedNames(allow []Arg) string {
	if len(allow) == 0 {
		return "none"
	}
	var s []string
	for _, a := range allow {
		s = append(s, a.Name)
	}
	return strings.Join(s, ", ")
}

// cloneArgs returns a deep copy of args, so that a caller cannot change a
// transcoder's allow-list.
func cloneArgs(args []Arg) []Arg {
	c := slices.Clone(args)
	for i := range c {
		c[i].Aliases = slices.Clone(c[i].Aliases)
	}
	return c
}

// pickArgs returns the Args of all whose spellings are in names; nil names
// is all of them.
func pickArgs(all []Arg, names []string) ([]Arg, error) {
	if names == nil {
		return all, nil
	}
	picked := []Arg{}
	for _, n := range names {
		a, ok := findArg(all, n)
		if !ok {
			return nil, insitu.Errorf(insitu.InvalidArgument, "ffmpeg: AllowArgs: %s is not one of the options of AllowedArgs (%s)", quote(n), allowedNames(all))
		}
		if !slices.ContainsFunc(picked, func(p Arg) bool { return p.Name == a.Name }) {
			picked = append(picked, a)
		}
	}
	return picked, nil
}

// knownCodec reports whether c is one of the WAV sample encodings.
func knownCodec(c string) bool {
	_, _, ok := codecShape(c)
	return ok
}

// codecShape returns the WAV format tag and bits per sample of codec c.
func codecShape(c string) (format, bits int, ok bool) {
	for _, k := range codecs() {
		if k.name == c {
			return k.format, k.bits, true
		}
	}
	return 0, 0, false
}

// atoi parses a decimal number of at most 7 digits, no sign.
func atoi(s string) (int, bool) {
	if s == "" || len(s) > 7 || strings.Trim(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// quote quotes a word of an args string for an error, cut to 40 bytes.
func quote(w string) string {
	if len(w) > 40 {
		return strconv.Quote(w[:40]) + "…"
	}
	return strconv.Quote(w)
}

func argsError(format string, a ...any) error {
	return insitu.Errorf(insitu.InvalidArgument, "ffmpeg: args: "+format, a...)
}

// channelsArg is -ac, the output's channels, 1 to most.
func channelsArg(most int) Arg {
	return Arg{
		Name:   "-ac",
		Values: "1 to " + strconv.Itoa(most),
		Doc:    "output channels",
		sets:   "channels",
		set: func(v string, o *output) bool {
			n, ok := atoi(v)
			if !ok || n < 1 || n > most {
				return false
			}
			o.channels = n
			return true
		},
	}
}

// rateArg is -ar, the output's sample rate, one of rates.
func rateArg(rates []int) Arg {
	names := make([]string, len(rates))
	for i, r := range rates {
		names[i] = strconv.Itoa(r)
	}
	return Arg{
		Name:   "-ar",
		Values: "one of " + strings.Join(names, ", "),
		Doc:    "output sample rate",
		sets:   "sample rate",
		set: func(v string, o *output) bool {
			n, ok := atoi(v)
			if ok && slices.Contains(rates, n) {
				o.sampleRate = n
				return true
			}
			return false
		},
	}
}
