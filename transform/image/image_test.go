package image_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/insitu-data/insitu"
	timage "github.com/insitu-data/insitu/transform/image"
)

// testImage is the shared test data's JPEG: 6000x4000, progressive.
var testImage = filepath.Join("..", "..", "internal", "testdata", "test-image.jpg")

func run(t *testing.T, tr insitu.Transform, body []byte) ([]byte, error) {
	t.Helper()
	var out bytes.Buffer
	err := tr.Transform(context.Background(), &insitu.Input{Object: insitu.Object{Name: insitu.Name{Bucket: "b", Key: "k.jpg"}, Size: int64(len(body))}, Body: bytes.NewReader(body)}, &out)
	return out.Bytes(), err
}

// TestThumbnail: the 6000x4000 JPEG becomes a 300x200 JPEG, and a PNG of
// the same when asked; an image that fits keeps its size.
func TestThumbnail(t *testing.T) {
	t.Parallel()
	real, err := os.ReadFile(testImage)
	if err != nil {
		t.Fatal(err)
	}
	// A generated 1200x800 JPEG for the other cases: decoding the real
	// 24-megapixel one takes seconds under the race detector.
	var gen bytes.Buffer
	if err := jpeg.Encode(&gen, image.NewRGBA(image.Rect(0, 0, 1200, 800)), nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		in     []byte
		opts   timage.Options
		format string
		w, h   int
	}{
		{real, timage.Options{Width: 300}, "jpeg", 300, 200},
		{gen.Bytes(), timage.Options{Width: 300, Height: 100}, "jpeg", 150, 100},
		{gen.Bytes(), timage.Options{Height: 400, Format: timage.PNG}, "png", 600, 400},
	} {
		in := tc.in
		tr, err := timage.Resize(&tc.opts)
		if err != nil {
			t.Fatal(err)
		}
		out, err := run(t, tr, in)
		if err != nil {
			t.Fatalf("%+v: %v", tc.opts, err)
		}
		cfg, format, err := image.DecodeConfig(bytes.NewReader(out))
		if err != nil || format != tc.format || cfg.Width != tc.w || cfg.Height != tc.h {
			t.Errorf("%+v: %s %dx%d (%v), want %s %dx%d", tc.opts, format, cfg.Width, cfg.Height, err, tc.format, tc.w, tc.h)
		}
	}
	// A small PNG that fits stays its size and format, pixel for pixel.
	src := image.NewRGBA(image.Rect(0, 0, 4, 3))
	src.Set(1, 1, color.RGBA{200, 10, 30, 255})
	var b bytes.Buffer
	png.Encode(&b, src)
	tr, _ := timage.Resize(&timage.Options{Width: 100})
	out, err := run(t, tr, b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	got, err := png.Decode(bytes.NewReader(out))
	r, g, bl, _ := got.At(1, 1).RGBA()
	if err != nil || got.Bounds() != src.Bounds() || r>>8 != 200 || g>>8 != 10 || bl>>8 != 30 {
		t.Errorf("a PNG that fits: %v, %v", got.Bounds(), err)
	}
}

// TestBadImages: what is not an image, a damaged one, one over MaxPixels
// and bad options fail with their codes.
func TestBadImages(t *testing.T) {
	t.Parallel()
	in, err := os.ReadFile(testImage)
	if err != nil {
		t.Fatal(err)
	}
	tr, _ := timage.Resize(&timage.Options{Width: 100})
	for name, tc := range map[string]struct {
		tr   insitu.Transform
		body []byte
		code insitu.Code
	}{
		"text":      {tr, []byte("hello, not an image"), insitu.InvalidArgument},
		"empty":     {tr, nil, insitu.InvalidArgument},
		"truncated": {tr, in[:len(in)/3], insitu.InvalidArgument},
		"too large": {must(timage.Resize(&timage.Options{Width: 100, MaxPixels: 1_000_000})), in, insitu.TooLarge},
	} {
		if _, err := run(t, tc.tr, tc.body); !errors.Is(err, tc.code) {
			t.Errorf("%s: %v, want %s", name, err, tc.code)
		}
	}
	for _, o := range []timage.Options{{Width: -1}, {Format: "gif"}, {Quality: 101}, {MaxPixels: -1}} {
		if _, err := timage.Resize(&o); !errors.Is(err, insitu.InvalidArgument) || !strings.Contains(err.Error(), "image") {
			t.Errorf("Resize(%+v): %v, want InvalidArgument", o, err)
		}
	}
}

func must(t insitu.Transform, err error) insitu.Transform {
	if err != nil {
		panic(err)
	}
	return t
}
