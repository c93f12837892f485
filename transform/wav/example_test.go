package wav_test

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/insitu-data/insitu/transform/wav"
)

func ExampleParse() {
	// A 44-byte header for one second of 16-bit stereo at 8,000 Hz.
	const rate, channels, bits = 8000, 2, 16
	data := make([]byte, rate*channels*bits/8)
	var b bytes.Buffer
	w := func(v any) { _ = binary.Write(&b, binary.LittleEndian, v) }
	b.WriteString("RIFF")
	w(uint32(36 + len(data)))
	b.WriteString("WAVEfmt ")
	w(uint32(16))
	w(uint16(wav.FormatPCM))
	w(uint16(channels))
	w(uint32(rate))
	w(uint32(rate * channels * bits / 8))
	w(uint16(channels * bits / 8))
	w(uint16(bits))
	b.WriteString("data")
	w(uint32(len(data)))
	b.Write(data)

	h, err := wav.Parse(bytes.NewReader(b.Bytes()), int64(b.Len()))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(h)
	fmt.Println("samples at", h.DataOffset)

	// The same file with its sizes left at 0xFFFFFFFF, as ffmpeg writes to a pipe.
	bad := b.Bytes()
	binary.LittleEndian.PutUint32(bad[4:], 0xFFFFFFFF)
	_, err = wav.Parse(bytes.NewReader(bad), int64(len(bad)))
	fmt.Println(err)
	// Output:
	// PCM 16-bit, 2 ch, 8000 Hz, 8000 frames (1s)
	// samples at 44
	// wav: RIFF size is 0xFFFFFFFF (a WAV streamed to a pipe, sizes never filled in) (invalid_argument)
}
