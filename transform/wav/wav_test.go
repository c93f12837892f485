package wav_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/testutil"
	"github.com/insitu-data/insitu/transform/wav"
)

func TestParseRealFile(t *testing.T) {
	f, err := os.Open(testutil.Testdata(t, "test-audio-wav.wav"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	h, err := wav.Parse(f, fi.Size())
	if err != nil {
		t.Fatal(err)
	}
	want := wav.Header{Format: wav.FormatPCM, Channels: 2, SampleRate: 44100, BitsPerSample: 16,
		BlockAlign: 4, DataOffset: 44, DataSize: 529352} // a 148-byte LIST chunk follows the samples
	if h != want {
		t.Fatalf("Parse = %+v, want %+v", h, want)
	}
	if d := h.Duration(); d < 2990*time.Millisecond || d > 3010*time.Millisecond {
		t.Fatalf("Duration = %v, want 3.00 s", d)
	}
}

// chunk returns a RIFF chunk: id, size and body, padded to an even length.
func chunk(id string, body []byte) []byte {
	b := append([]byte(id), le32(uint32(len(body)))...)
	b = append(b, body...)
	if len(body)%2 == 1 {
		b = append(b, 0)
	}
	return b
}

func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

func fmtBody(format, channels uint16, rate uint32, bits uint16) []byte {
	align := channels * (bits / 8)
	b := binary.LittleEndian.AppendUint16(nil, format)
	b = binary.LittleEndian.AppendUint16(b, channels)
	b = binary.LittleEndian.AppendUint32(b, rate)
	b = binary.LittleEndian.AppendUint32(b, rate*uint32(align))
	b = binary.LittleEndian.AppendUint16(b, align)
	return binary.LittleEndian.AppendUint16(b, bits)
}

// riff wraps chunks in a RIFF/WAVE header with the correct size.
func riff(chunks ...[]byte) []byte {
	body := []byte("WAVE")
	for _, c := range chunks {
		body = append(body, c...)
	}
	return append(append([]byte("RIFF"), le32(uint32(len(body)))...), body...)
}

var stereo16 = fmtBody(1, 2, 44100, 16)

func TestParseSkipsChunks(t *testing.T) {
	data := make([]byte, 4*441) // 10 ms of stereo 16-bit
	// An odd-length LIST chunk checks the padding rule; fact is skipped too.
	b := riff(chunk("fmt ", stereo16), chunk("LIST", []byte("INFOISFT")[:7]), chunk("fact", le32(441)), chunk("data", data))
	h, err := wav.Parse(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if h.DataOffset+h.DataSize != int64(len(b)) || h.DataSize != int64(len(data)) {
		t.Fatalf("data at %d+%d, want %d+%d", h.DataOffset, h.DataSize, len(b)-len(data), len(data))
	}
	if h.Frames() != 441 || h.Duration() != 10*time.Millisecond {
		t.Fatalf("Frames = %d, Duration = %v, want 441 and 10ms", h.Frames(), h.Duration())
	}
}

func TestParseExtensible(t *testing.T) {
	body := fmtBody(wav.FormatExtensible, 6, 48000, 16)
	body = binary.LittleEndian.AppendUint16(body, 22) // cbSize
	body = binary.LittleEndian.AppendUint16(body, 16) // valid bits
	body = append(body, le32(0x3f)...)                // channel mask
	body = binary.LittleEndian.AppendUint16(body, wav.FormatPCM)
	body = append(body, make([]byte, 14)...) // rest of the GUID
	b := riff(chunk("fmt ", body), chunk("data", make([]byte, 12*48)))
	h, err := wav.Parse(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if h.Format != wav.FormatPCM || h.Channels != 6 || h.Duration() != time.Millisecond {
		t.Fatalf("Parse = %v, want PCM, 6 ch, 1ms", h)
	}
}

func TestParseRejects(t *testing.T) {
	data := make([]byte, 16)
	good := riff(chunk("fmt ", stereo16), chunk("data", data))
	set := func(b []byte, off int, v uint32) []byte {
		b = bytes.Clone(b)
		binary.LittleEndian.PutUint32(b[off:], v)
		return b
	}
	dataSizeAt := 12 + 8 + 16 + 4
	for _, tc := range []struct {
		name, want string
		b          []byte
		size       int64 // 0: len(b)
	}{
		{"empty", "too short", nil, 0},
		{"not riff", "not a RIFF/WAVE", append([]byte("RIFX"), good[4:]...), 0},
		{"not wave", "not a RIFF/WAVE", append(append([]byte{}, good[:8]...), append([]byte("AVI "), good[12:]...)...), 0},
		// What ffmpeg writes to a pipe: both sizes left at 0xFFFFFFFF.
		{"pipe", "0xFFFFFFFF", set(set(good, 4, 0xFFFFFFFF), dataSizeAt, 0xFFFFFFFF), 0},
		{"pipe data only", "data size is 0xFFFFFFFF", set(good, dataSizeAt, 0xFFFFFFFF), 0},
		{"riff too small", "RIFF size is", set(good, 4, uint32(len(good)-9)), 0},
		{"riff too large", "RIFF size is", set(good, 4, uint32(len(good))), 0},
		{"truncated file", "RIFF size is", good[:len(good)-4], 0},
		{"data past end", "runs past the end", set(set(good, dataSizeAt, 20), 4, uint32(len(good)-8)), 0},
		{"partial frame", "not a multiple of the block align", riff(chunk("fmt ", stereo16), chunk("data", make([]byte, 6))), 0},
		{"no data", "no data chunk", riff(chunk("fmt ", stereo16)), 0},
		{"data first", "before the fmt", riff(chunk("data", data), chunk("fmt ", stereo16)), 0},
		{"short fmt", "fmt chunk is 14 bytes", riff(chunk("fmt ", stereo16[:14]), chunk("data", data)), 0},
		{"zero channels", "0 channels", riff(chunk("fmt ", fmtBody(1, 0, 44100, 16)), chunk("data", data)), 0},
		{"zero rate", "sample rate of 0", riff(chunk("fmt ", fmtBody(1, 2, 0, 16)), chunk("data", data)), 0},
		{"bad align", "block align", riff(chunk("fmt ", append(binary.LittleEndian.AppendUint16(bytes.Clone(stereo16[:12]), 3), stereo16[14:]...)), chunk("data", data)), 0},
		{"list past end", "runs past the end", riff(chunk("fmt ", stereo16), []byte("LIST\xff\x00\x00\x00")), 0},
		// The reader ends before the size it was given.
		{"header cut", "inside a header", good[:30], int64(len(good))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			size := tc.size
			if size == 0 {
				size = int64(len(tc.b))
			}
			_, err := wav.Parse(bytes.NewReader(tc.b), size)
			if !errors.Is(err, insitu.InvalidArgument) {
				t.Fatalf("Parse error = %v, want InvalidArgument", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse error = %q, want it to mention %q", err, tc.want)
			}
		})
	}
	if _, err := wav.Parse(bytes.NewReader(good), int64(len(good))); err != nil {
		t.Fatalf("the unbroken header fails: %v", err)
	}
}

type failingReader struct{ err error }

func (f failingReader) ReadAt([]byte, int64) (int, error) { return 0, f.err }

func TestParseReadError(t *testing.T) {
	boom := errors.New("disk on fire")
	if _, err := wav.Parse(failingReader{boom}, 100); err != boom {
		t.Fatalf("Parse error = %v, want the reader's error as is", err)
	}
}
