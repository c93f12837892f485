// Package image resizes and re-encodes images: thumbnails for a training
// set, or one format for a mixed one. JPEG and PNG in, JPEG or PNG out,
// with the standard library's codecs and golang.org/x/image/draw's
// scalers.
//
// An image is decoded whole (no codec streams), so its size is bounded
// before it is decoded: Options.MaxPixels, from the image's header.
package image

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"io"

	"golang.org/x/image/draw"

	"github.com/insitu-data/insitu"
)

// Formats of the output.
const (
	// Same keeps the input's format.
	Same = ""
	// JPEG writes image/jpeg.
	JPEG = "jpeg"
	// PNG writes image/png.
	PNG = "png"
)

// DefaultMaxPixels bounds the images a [Resize] decodes: 100 million
// pixels, about 400 MB once decoded.
const DefaultMaxPixels = 100_000_000

// Options configure [Resize]. A nil *Options means the defaults.
type Options struct {
	// Width and Height bound the output: the image is scaled down, its
	// aspect ratio kept, until it fits both (0: no bound on that side).
	// An image that fits already is re-encoded at its size; none is
	// scaled up. Default: 0 and 0, no scaling.
	Width, Height int
	// Format is the output's: [JPEG], [PNG] or [Same] (the default).
	Format string
	// Quality is the JPEG quality, 1 to 100. Default: 85.
	Quality int
	// MaxPixels refuses, with TooLarge and before decoding, an image of
	// more pixels. Default: [DefaultMaxPixels].
	MaxPixels int64
}

// resize is the transform of [Resize].
type resize struct{ o Options }

// Resize returns the transform that scales each image down to fit
// opts.Width × opts.Height (Catmull-Rom) and encodes it as opts.Format.
// An input that is not a JPEG or PNG image, or is damaged, fails with
// InvalidArgument; one over MaxPixels with TooLarge. Bad options are an
// InvalidArgument error.
func Resize(opts *Options) (insitu.Transform, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	switch {
	case o.Width < 0 || o.Height < 0:
		return nil, insitu.Errorf(insitu.InvalidArgument, "image: Width and Height must not be negative")
	case o.Format != Same && o.Format != JPEG && o.Format != PNG:
		return nil, insitu.Errorf(insitu.InvalidArgument, "image: Format %q; want %q, %q or \"\"", o.Format, JPEG, PNG)
	case o.Quality < 0 || o.Quality > 100:
		return nil, insitu.Errorf(insitu.InvalidArgument, "image: Quality %d; want 1 to 100, or 0 for 85", o.Quality)
	case o.MaxPixels < 0:
		return nil, insitu.Errorf(insitu.InvalidArgument, "image: MaxPixels must not be negative")
	}
	if o.Quality == 0 {
		o.Quality = 85
	}
	if o.MaxPixels == 0 {
		o.MaxPixels = DefaultMaxPixels
	}
	return resize{o}, nil
}

// String names the transform in errors (see transform.Chain).
func (r resize) String() string {
	return fmt.Sprintf("image resize %dx%d %s", r.o.Width, r.o.Height, r.o.Format)
}

// Transform decodes in.Body, scales it and writes the encoded output.
func (r resize) Transform(ctx context.Context, in *insitu.Input, out io.Writer) error {
	// The header is read once for its size, and kept to be read again by
	// the decoder.
	br := bufio.NewReaderSize(readErrors{in.Body}, 64<<10)
	var head bytes.Buffer
	cfg, format, err := image.DecodeConfig(io.TeeReader(br, &head))
	if err != nil {
		return decodeError(err)
	}
	if px := int64(cfg.Width) * int64(cfg.Height); px > r.o.MaxPixels {
		return insitu.Errorf(insitu.TooLarge, "image: %dx%d is %d pixels, over the limit of %d", cfg.Width, cfg.Height, px, r.o.MaxPixels)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	img, _, err := image.Decode(io.MultiReader(&head, br))
	if err != nil {
		return decodeError(err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	img = r.scale(img)
	f := r.o.Format
	if f == Same {
		f = format
	}
	switch f {
	case PNG:
		return png.Encode(out, img)
	default:
		return jpeg.Encode(out, img, &jpeg.Options{Quality: r.o.Quality})
	}
}

// scale returns img scaled down to fit the bounds, or img.
func (r resize) scale(img image.Image) image.Image {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	f := 1.0
	if r.o.Width > 0 && w > r.o.Width {
		f = float64(r.o.Width) / float64(w)
	}
	if r.o.Height > 0 && h > r.o.Height {
		f = min(f, float64(r.o.Height)/float64(h))
	}
	if f == 1 {
		return img
	}
	nw, nh := max(1, int(float64(w)*f+0.5)), max(1, int(float64(h)*f+0.5))
	dst := image.NewRGBA(image.Rect(0, 0, nw, nh))
	draw.CatmullRom.Scale(dst, dst.Bounds(), img, b, draw.Src, nil)
	return dst
}

// decodeError classifies a decoder's error: a reader's own error as it
// is, anything else as damaged or foreign input.
func decodeError(err error) error {
	var re readError
	if errors.As(err, &re) {
		return re.err
	}
	if errors.Is(err, image.ErrFormat) {
		return insitu.Errorf(insitu.InvalidArgument, "image: not a JPEG or PNG image")
	}
	return insitu.Errorf(insitu.InvalidArgument, "image: damaged: %v", err)
}

// readErrors marks the errors of the input reader, so that they are not
// taken for damaged input.
type readErrors struct{ r io.Reader }

func (r readErrors) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	if err != nil && err != io.EOF {
		err = readError{err}
	}
	return n, err
}

// readError marks an error of the input reader, so that it is not taken
// for damaged input.
type readError struct{ err error }

func (e readError) Error() string { return e.err.Error() }
func (e readError) Unwrap() error { return e.err }
