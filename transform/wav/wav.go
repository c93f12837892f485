// Package wav parses and validates the header of a RIFF/WAVE file, so that
// a transform can check the WAV it produced before passing it on.
package wav

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/insitu-data/insitu"
)

// Format tags of the fmt chunk.
const (
	// FormatPCM is integer PCM.
	FormatPCM = 1
	// FormatFloat is IEEE float PCM.
	FormatFloat = 3
	// FormatExtensible is WAVE_FORMAT_EXTENSIBLE; [Parse] reports the
	// sub-format in its place.
	FormatExtensible = 0xFFFE
)

// streamedSize is the chunk size a writer that cannot seek back (ffmpeg
// writing to a pipe) leaves in the RIFF and data headers.
const streamedSize = 0xFFFFFFFF

// Header is what [Parse] learned from a WAV file.
type Header struct {
	// Format is the audio format tag, such as [FormatPCM]. For
	// WAVE_FORMAT_EXTENSIBLE it is the tag of the sub-format.
	Format        int
	Channels      int
	SampleRate    int
	BitsPerSample int
	// BlockAlign is the size in bytes of one frame (one sample of every
	// channel).
	BlockAlign int
	// DataOffset is where the samples start in the file, in bytes.
	DataOffset int64
	// DataSize is the length of the samples in bytes.
	DataSize int64
}

// Frames returns the number of frames (samples per channel).
func (h Header) Frames() int64 {
	if h.BlockAlign <= 0 {
		return 0
	}
	return h.DataSize / int64(h.BlockAlign)
}

// Duration returns the length of the audio.
func (h Header) Duration() time.Duration {
	if h.SampleRate <= 0 {
		return 0
	}
	f, r := h.Frames(), int64(h.SampleRate)
	return time.Duration(f/r)*time.Second + time.Duration(f%r*int64(time.Second)/r)
}

// Parse reads and validates the header of the WAV file of size bytes that r
// reads. It walks the RIFF chunks up to the data chunk, skipping the ones
// it does not need (LIST, fact, ...), and refuses, with an
// [insitu.InvalidArgument] error that says why: a file that is not
// RIFF/WAVE; a RIFF size other than size-8; a missing, short or
// inconsistent fmt chunk; a data chunk before the fmt chunk or none at all;
// a data size of 0xFFFFFFFF (a WAV streamed to a pipe, whose sizes were
// never filled in); a data chunk that runs past the end of the file; and a
// data size that is not a whole number of frames. Errors of r other than a
// short read are returned as they are.
func Parse(r io.ReaderAt, size int64) (Header, error) {
	var h Header
	var hdr [12]byte
	if size < int64(len(hdr)) {
		return h, invalid("file is %d bytes, too short for a RIFF header", size)
	}
	if err := readAt(r, hdr[:], 0); err != nil {
		return h, err
	}
	if string(hdr[0:4]) != "RIFF" || string(hdr[8:12]) != "WAVE" {
		return h, invalid("not a RIFF/WAVE file (starts with %q)", hdr[:])
	}
	switch riff := int64(binary.LittleEndian.Uint32(hdr[4:8])); {
	case riff == streamedSize:
		return h, invalid("RIFF size is 0xFFFFFFFF (a WAV streamed to a pipe, sizes never filled in)")
	case riff != size-8:
		return h, invalid("RIFF size is %d, file size says %d", riff, size-8)
	}

	haveFmt := false
	off := int64(len(hdr))
	for {
		if off+8 > size {
			return h, invalid("no data chunk")
		}
		var ch [8]byte
		if err := readAt(r, ch[:], off); err != nil {
			return h, err
		}
		id := string(ch[0:4])
		n := int64(binary.LittleEndian.Uint32(ch[4:8]))
		body := off + 8
		switch id {
		case "fmt ":
			if err := parseFmt(r, body, n, size, &h); err != nil {
				return h, err
			}
			haveFmt = true
		case "data":
			if !haveFmt {
				return h, invalid("data chunk before the fmt chunk")
			}
			if n == streamedSize {
				return h, invalid("data size is 0xFFFFFFFF (a WAV streamed to a pipe, sizes never filled in)")
			}
			if body+n > size {
				return h, invalid("data chunk of %d bytes at offset %d runs past the end of the %d-byte file", n, body, size)
			}
			if n%int64(h.BlockAlign) != 0 {
				return h, invalid("data size %d is not a multiple of the block align %d", n, h.BlockAlign)
			}
			h.DataOffset, h.DataSize = body, n
			return h, nil
		}
		if body+n > size {
			return h, invalid("%q chunk of %d bytes at offset %d runs past the end of the %d-byte file", id, n, body, size)
		}
		off = body + n + n&1 // chunks are padded to an even length
	}
}

func parseFmt(r io.ReaderAt, off, n, size int64, h *Header) error {
	if n < 16 {
		return invalid("fmt chunk is %d bytes, want at least 16", n)
	}
	if off+n > size {
		return invalid("fmt chunk runs past the end of the file")
	}
	var b [40]byte
	m := min(n, int64(len(b)))
	if err := readAt(r, b[:m], off); err != nil {
		return err
	}
	le := binary.LittleEndian
	h.Format = int(le.Uint16(b[0:2]))
	h.Channels = int(le.Uint16(b[2:4]))
	h.SampleRate = int(le.Uint32(b[4:8]))
	byteRate := int64(le.Uint32(b[8:12]))
	h.BlockAlign = int(le.Uint16(b[12:14]))
	h.BitsPerSample = int(le.Uint16(b[14:16]))
	if h.Format == FormatExtensible {
		// cbSize(2) validBits(2) channelMask(4) subFormat GUID(16): the
		// GUID starts with the sub-format's tag.
		if m < 40 || le.Uint16(b[16:18]) < 22 {
			return invalid("WAVE_FORMAT_EXTENSIBLE fmt chunk is too short")
		}
		h.Format = int(le.Uint16(b[24:26]))
	}
	switch {
	case h.Channels == 0:
		return invalid("fmt chunk says 0 channels")
	case h.SampleRate == 0:
		return invalid("fmt chunk says a sample rate of 0")
	case h.BitsPerSample == 0:
		return invalid("fmt chunk says 0 bits per sample")
	case h.BlockAlign != h.Channels*((h.BitsPerSample+7)/8):
		return invalid("block align %d does not match %d channels of %d bits", h.BlockAlign, h.Channels, h.BitsPerSample)
	case byteRate != int64(h.SampleRate)*int64(h.BlockAlign):
		return invalid("byte rate %d does not match %d Hz × %d bytes per frame", byteRate, h.SampleRate, h.BlockAlign)
	}
	return nil
}

// readAt fills b from r at off; a short read is an invalid file.
func readAt(r io.ReaderAt, b []byte, off int64) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return invalid("file ends at offset %d, inside a header", off+int64(n))
	}
	return err
}

func invalid(format string, args ...any) error {
	return insitu.Errorf(insitu.InvalidArgument, "wav: "+format, args...)
}

// String describes the header, such as
// "PCM 16-bit, 2 ch, 44100 Hz, 132300 frames (3s)".
func (h Header) String() string {
	f := fmt.Sprintf("format %d", h.Format)
	switch h.Format {
	case FormatPCM:
		f = "PCM"
	case FormatFloat:
		f = "float"
	}
	return fmt.Sprintf("%s %d-bit, %d ch, %d Hz, %d frames (%v)", f, h.BitsPerSample, h.Channels, h.SampleRate, h.Frames(), h.Duration())
}
