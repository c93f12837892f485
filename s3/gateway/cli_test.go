package gateway_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/insitu-data/insitu"
)

// run runs a command with the gateway's credentials in its environment
// and returns its stdout; it fails the test when the command fails and
// wantFail is not set.
func (e *env) run(t *testing.T, wantFail bool, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(),
		"AWS_ACCESS_KEY_ID="+accessKey, "AWS_SECRET_ACCESS_KEY="+secretKey, "AWS_DEFAULT_REGION=us-east-1",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_MAX_ATTEMPTS=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if (err != nil) != wantFail {
		t.Errorf("%s %s: %v (want failure %v); stderr: %s", name, strings.Join(args, " "), err, wantFail, stderr.String())
	}
	if wantFail {
		t.Logf("%s %s: %v: %s", name, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// TestOtherClients: the AWS CLI (botocore) and curl's --aws-sigv4 read
// through the gateway too, and see a body cut in the middle as a failure.
func TestOtherClients(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the aws and curl programs")
	}
	e := startEnv(t, nil, false)
	if _, err := exec.LookPath("aws"); err == nil {
		ep := "--endpoint-url=" + e.srv.URL
		if out := e.run(t, false, "aws", ep, "s3", "ls", "s3://plain/dir/"); !strings.Contains(out, "PRE sub/") || !strings.Contains(out, " 2 b\n") {
			t.Errorf("aws s3 ls: %q", out)
		}
		if out := e.run(t, false, "aws", ep, "s3", "cp", "s3://upper/hello.txt", "-"); out != "HELLO, WORLD" {
			t.Errorf("aws s3 cp upper/hello.txt: %q", out)
		}
		if out := e.run(t, false, "aws", ep, "s3api", "head-object", "--bucket", "upper", "--key", "hello.txt"); !strings.Contains(out, `"ContentLength": 12`) {
			t.Errorf("aws s3api head-object: %q", out)
		}
		// 9 MiB: the CLI downloads it in ranges of 8 MiB, which the
		// owner's transform serves.
		huge := bytes.Repeat([]byte("abcdefgh"), 9<<20/8)
		if _, err := e.c.Put(context.Background(), insitu.Name{Bucket: "data", Key: "huge.bin"}, bytes.NewReader(huge), int64(len(huge))); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "huge.bin")
		e.run(t, false, "aws", ep, "s3", "cp", "s3://upper/huge.bin", out)
		if b, err := os.ReadFile(out); err != nil || !bytes.Equal(b, bytes.ToUpper(huge)) {
			t.Errorf("aws s3 cp upper/huge.bin: %d bytes, %v", len(b), err)
		}
		e.run(t, true, "aws", ep, "s3api", "get-object", "--bucket", "broken", "--key", "hello.txt", filepath.Join(t.TempDir(), "broken"))
	}
	if _, err := exec.LookPath("curl"); err == nil {
		sig := []string{"-sS", "--fail", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user", accessKey + ":" + secretKey}
		e.run(t, false, "curl", append(sig, e.srv.URL+"/upper/hello.txt")...)
		e.run(t, true, "curl", append(sig, "-o", "/dev/null", e.srv.URL+"/broken/hello.txt")...)
	}
}
