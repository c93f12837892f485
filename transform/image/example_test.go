package image_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"

	"github.com/insitu-data/insitu"
	timage "github.com/insitu-data/insitu/transform/image"
)

// A 640x480 image made into a JPEG thumbnail that fits 160x160.
func ExampleResize() {
	var in bytes.Buffer
	png.Encode(&in, image.NewGray(image.Rect(0, 0, 640, 480)))
	thumb, err := timage.Resize(&timage.Options{Width: 160, Height: 160, Format: timage.JPEG})
	if err != nil {
		panic(err)
	}
	var out bytes.Buffer
	if err := thumb.Transform(context.Background(), &insitu.Input{Body: &in}, &out); err != nil {
		panic(err)
	}
	cfg, format, _ := image.DecodeConfig(&out)
	fmt.Println(format, cfg.Width, cfg.Height)
	// Output: jpeg 160 120
}
