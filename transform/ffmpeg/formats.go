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
	// check reports whether the file r of size bytes is an output o of
	// this format, from its header.
	check func(r io.ReaderAt, size int64, o output) error
}

// formats returns the output formats.
func formats() []format {
	return []format{
		{name: "wav", kind: "WAV", muxer: "wav", ext: ".wav", check: checkWAV},
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

func (o output) muxer() string { return o.mustFormat().muxer }
func (o output) ext() string   { return o.mustFormat().ext }
func (o output) kind() string  { return o.mustFormat().kind }

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
