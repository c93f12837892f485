// Package ffmpeg runs the ffmpeg command-line tool as an insitu transform:
// [WAV] transcodes audio to WAV with correct header sizes. A job's args
// (Input.Args, such as "-ac 1 -ar 16000") choose the output's channels,
// sample rate and sample format within an allow-list, [AllowedArgs]; they
// can never name a file, a URL, a filter or another output ([CheckArgs]).
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
