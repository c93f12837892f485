package ffmpeg

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/insitu-data/insitu/transform/wav"
)

// output is what a transcoder writes for one object: its format and the
// properties the options and the object's Input.Args chose.
type output struct {
	format     string // a format's name, such as "wav" (see formats)
	channels   int    // 0: as the input
	sampleRate int    // Hz; 0: as the input
	codec      string // ffmpeg's encoder, such as "pcm_s16le" or "libopus"
	sampleFmt  string // ffmpeg's -sample_fmt; "": the encoder's choice
	bitrate    int    // bits per second; 0: the encoder's default
	level      string // -compression_level; "": the encoder's default
}

// args returns the ffmpeg options that give the output o, after its -map
// and before its -f.
func (o output) args() []string {
	var args []string
	if o.channels > 0 {
		args = append(args, "-ac", strconv.Itoa(o.channels))
	}
	if o.sampleRate > 0 {
		args = append(args, "-ar", strconv.Itoa(o.sampleRate))
	}
	args = append(args, "-c:a", o.codec)
	if o.sampleFmt != "" {
		args = append(args, "-sample_fmt", o.sampleFmt)
	}
	if o.bitrate > 0 {
		args = append(args, "-b:a", strconv.Itoa(o.bitrate))
	}
	if o.level != "" {
		args = append(args, "-compression_level", o.level)
	}
	return args
}

// String describes o for errors and logs, such as
// "pcm_s16le, 2 ch, 44100 Hz" or "libopus, 96000 b/s".
func (o output) String() string {
	s := []string{o.codec}
	if o.channels > 0 {
		s = append(s, strconv.Itoa(o.channels)+" ch")
	}
	if o.sampleRate > 0 {
		s = append(s, strconv.Itoa(o.sampleRate)+" Hz")
	}
	if o.sampleFmt != "" {
		s = append(s, o.sampleFmt)
	}
	if o.bitrate > 0 {
		s = append(s, strconv.Itoa(o.bitrate)+" b/s")
	}
	if o.level != "" {
		s = append(s, "level "+o.level)
	}
	return strings.Join(s, ", ")
}

// format is an output format.
type format struct {
	name  string // as a transcoder's options name it
	kind  string // for errors: "WAV", "FLAC", …
	muxer string // ffmpeg's -f
	ext   string // the file name extension, with its dot
	codec string // ffmpeg's encoder (for wav, the default one)
	// muxOpts are options of the muxer, before its -f.
	muxOpts []string
	// check reports whether the file r of size bytes is an output o of
	// this format, from its header.
	check func(r io.ReaderAt, size int64, o output) error

	// What Input.Args may set (wav has the options of AllowedArgs):
	maxChannels int      // -ac is 1 to maxChannels
	rates       []int    // -ar is one of rates
	bitrates    [2]int   // -b:a is from bitrates[0] to bitrates[1] bits/s; none when zero
	levels      [2]int   // -compression_level is from levels[0] to levels[1]; none when zero
	sampleFmts  []string // -sample_fmt is one of them, as "arg=ffmpeg's name"; none when empty
}

// formats returns the output formats, in the order of [AudioFormats].
func formats() []format {
	all := argSampleRates()
	upTo := func(max int) []int {
		var r []int
		for _, n := range all {
			if n <= max {
				r = append(r, n)
			}
		}
		return r
	}
	faststart := []string{"-movflags", "+faststart"}
	return []format{
		{name: "wav", kind: "WAV", muxer: "wav", ext: ".wav", codec: "pcm_s16le", check: checkWAV},
		{name: "flac", kind: "FLAC", muxer: "flac", ext: ".flac", codec: "flac", check: magic(sig{0, "fLaC"}),
			maxChannels: 8, rates: all, levels: [2]int{0, 12}, sampleFmts: []string{"s16=s16", "s32=s32"}},
		{name: "mp3", kind: "MP3", muxer: "mp3", ext: ".mp3", codec: "libmp3lame", check: checkMP3,
			maxChannels: 2, rates: upTo(48000), bitrates: [2]int{8000, 320000}},
		{name: "ogg", kind: "Ogg Vorbis", muxer: "ogg", ext: ".ogg", codec: "libvorbis", check: magic(sig{0, "OggS"}, sig{28, "\x01vorbis"}),
			maxChannels: 8, rates: upTo(96000), bitrates: [2]int{32000, 500000}},
		{name: "opus", kind: "Ogg Opus", muxer: "opus", ext: ".opus", codec: "libopus", check: magic(sig{0, "OggS"}, sig{28, "OpusHead"}),
			maxChannels: 8, rates: []int{8000, 12000, 16000, 24000, 48000}, bitrates: [2]int{6000, 510000}},
		// +faststart moves MP4's index to the front, a second pass over
		// the staged file, so that a reader of a stream can play it.
		{name: "m4a", kind: "M4A (AAC)", muxer: "ipod", ext: ".m4a", codec: "aac", muxOpts: faststart, check: magic(sig{4, "ftyp"}),
			maxChannels: 8, rates: upTo(96000), bitrates: [2]int{16000, 512000}},
		{name: "alac", kind: "M4A (ALAC)", muxer: "ipod", ext: ".m4a", codec: "alac", muxOpts: faststart, check: magic(sig{4, "ftyp"}),
			maxChannels: 8, rates: all, sampleFmts: []string{"s16=s16p", "s32=s32p"}},
	}
}

// formatOf returns the format named name.
func formatOf(name string) (format, bool) {
	for _, f := range formats() {
		if f.name == name {
			return f, true
		}
	}
	return format{}, false
}

// mustFormat returns the format of o, which the package made.
func (o output) mustFormat() format {
	f, ok := formatOf(o.format)
	if !ok {
		panic("ffmpeg: no format " + strconv.Quote(o.format))
	}
	return f
}

func (o output) muxer() string     { return o.mustFormat().muxer }
func (o output) muxOpts() []string { return o.mustFormat().muxOpts }
func (o output) ext() string       { return o.mustFormat().ext }
func (o output) kind() string      { return o.mustFormat().kind }

// check reports whether the file r of size bytes is the output o.
func (o output) check(r io.ReaderAt, size int64) error {
	return o.mustFormat().check(r, size, o)
}

// checkWAV checks a WAV file: sizes consistent with the file's length,
// the encoding asked for, and the channels and rate where they were.
func checkWAV(r io.ReaderAt, size int64, o output) error {
	h, err := wav.Parse(r, size)
	if err != nil {
		return err
	}
	format, bits, _ := codecShape(o.codec)
	if h.Format != format || h.BitsPerSample != bits ||
		(o.channels > 0 && h.Channels != o.channels) || (o.sampleRate > 0 && h.SampleRate != o.sampleRate) {
		return fmt.Errorf("got %v, want %s", h, o)
	}
	return nil
}

// sig is the bytes b at offset off of a file.
type sig struct {
	off int
	b   string
}

// magic returns a check that a file has every one of sigs.
func magic(sigs ...sig) func(io.ReaderAt, int64, output) error {
	return func(r io.ReaderAt, size int64, _ output) error {
		for _, g := range sigs {
			b := make([]byte, len(g.b))
			if _, err := r.ReadAt(b, int64(g.off)); err != nil {
				return fmt.Errorf("%d bytes, too short for its header: %w", size, err)
			}
			if string(b) != g.b {
				return fmt.Errorf("no %q at byte %d", g.b, g.off)
			}
		}
		return nil
	}
}

// checkMP3 checks that the file starts with an ID3v2 tag or an MPEG
// audio frame.
func checkMP3(r io.ReaderAt, size int64, _ output) error {
	var b [3]byte
	if _, err := r.ReadAt(b[:], 0); err != nil {
		return fmt.Errorf("%d bytes, too short for an MP3: %w", size, err)
	}
	if string(b[:]) != "ID3" && (b[0] != 0xFF || b[1]&0xE0 != 0xE0) {
		return fmt.Errorf("starts with % x, neither an ID3 tag nor an MPEG frame", b)
	}
	return nil
}

// audioArgs returns the options an args string may pass to an [Audio]
// transcoder writing the format f.
func audioArgs(f format) []Arg {
	if f.name == "wav" {
		return AllowedArgs()
	}
	args := []Arg{channelsArg(f.maxChannels), rateArg(f.rates)}
	if lo, hi := f.bitrates[0], f.bitrates[1]; hi > 0 {
		args = append(args, Arg{
			Name:    "-b:a",
			Aliases: []string{"-ab"},
			Values:  fmt.Sprintf("%dk to %dk (bits per second, such as 128k or 128000)", lo/1000, hi/1000),
			Doc:     "output bitrate",
			sets:    "bitrate",
			set: func(v string, o *output) bool {
				n, ok := parseBitrate(v)
				if !ok || n < lo || n > hi {
					return false
				}
				o.bitrate = n
				return true
			},
		})
	}
	if lo, hi := f.levels[0], f.levels[1]; hi > 0 {
		args = append(args, Arg{
			Name:   "-compression_level",
			Values: fmt.Sprintf("%d to %d", lo, hi),
			Doc:    "compression level: higher is smaller and slower, the same sound",
			sets:   "compression level",
			set: func(v string, o *output) bool {
				n, ok := atoi(v)
				if !ok || n < lo || n > hi {
					return false
				}
				o.level = strconv.Itoa(n)
				return true
			},
		})
	}
	if len(f.sampleFmts) > 0 {
		var names []string
		for _, sf := range f.sampleFmts {
			name, _, _ := strings.Cut(sf, "=")
			names = append(names, name)
		}
		args = append(args, Arg{
			Name:   "-sample_fmt",
			Values: "one of " + strings.Join(names, ", "),
			Doc:    "sample format: s16 for 16-bit samples, s32 for 24-bit ones",
			sets:   "sample format",
			set: func(v string, o *output) bool {
				for _, sf := range f.sampleFmts {
					if name, ff, _ := strings.Cut(sf, "="); name == v {
						o.sampleFmt = ff
						return true
					}
				}
				return false
			},
		})
	}
	return args
}

// parseBitrate parses a bitrate in bits per second, such as "128000", or
// in kilobits with a "k", such as "128k".
func parseBitrate(v string) (int, bool) {
	mult := 1
	if n, ok := strings.CutSuffix(v, "k"); ok {
		v, mult = n, 1000
	}
	n, ok := atoi(v)
	return n * mult, ok
}
