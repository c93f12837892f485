// Package ffmpeg runs the ffmpeg command-line tool as insitu transforms
// that convert audio:
//
//   - [WAV] transcodes any audio to PCM WAV with correct header sizes, its
//     channels, rate and encoding fixed by [WAVOptions];
//   - [Audio] transcodes any audio to the format [AudioOptions] names: WAV,
//     FLAC, MP3, Ogg Vorbis, Ogg Opus, or AAC or ALAC in .m4a.
//
// A job's args (Input.Args, such as "-ac 1 -ar 16000") choose the
// output's properties within an allow-list: channels, sample rate and
// sample format for WAV ([AllowedArgs], [CheckArgs]), and also bitrate and
// compression level where the format has them ([AllowedAudioArgs],
// [CheckAudioArgs]). They can never name a file, a URL, a filter, a
// format or another output: the package writes ffmpeg's arguments itself,
// with no shell.
//
// Both are [insitu.BatchTransform]s: one ffmpeg process transcodes a
// whole batch of inputs, each output byte for byte what the object alone
// gives (and what ffmpeg run directly with the transcoder's Args gives),
// for a fraction of the cost of a process per object on short files. Each
// output is staged in a temporary file that ffmpeg can seek (so headers
// and indexes are complete), checked, streamed out and always removed.
//
// The sample generator for tests and examples is in package ffmpegtest.
//
// The package needs an ffmpeg binary; [Lookup] finds it and, when it is
// missing, returns an error that says how to install it.
package ffmpeg

import (
	"errors"
	"os/exec"

	"github.com/insitu-data/insitu"
)

// ErrNotInstalled is the cause of the error [Lookup] returns when ffmpeg
// cannot be found; check for it with errors.Is.
var ErrNotInstalled = errors.New("ffmpeg is not installed")

// InstallHint says how to install ffmpeg on the common systems.
const InstallHint = "install it with `apt-get install -y ffmpeg` (Debian/Ubuntu) or `brew install ffmpeg` (macOS)"

// Lookup returns the path of the ffmpeg executable bin: a name searched on
// PATH, or a path. An empty bin means "ffmpeg". When it cannot be found the
// error wraps [ErrNotInstalled], has the code [insitu.NotFound], and its
// message says how to install ffmpeg.
func Lookup(bin string) (string, error) {
	if bin == "" {
		bin = "ffmpeg"
	}
	p, err := exec.LookPath(bin)
	if err != nil {
		return "", insitu.Errorf(insitu.NotFound, "%w: %s (%s)", ErrNotInstalled, InstallHint, lookErr(err))
	}
	return p, nil
}

// lookErr shortens exec's error to its message without the Go prefix.
func lookErr(err error) string {
	var e *exec.Error
	if errors.As(err, &e) {
		return e.Name + ": " + e.Err.Error()
	}
	return err.Error()
}
