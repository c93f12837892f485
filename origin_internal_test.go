package insitu

import (
	"math/rand/v2"
	"net/url"
	"testing"
)

// TestOriginStringIsEncode holds Origin.String, written by hand, to what
// url.Values.Encode writes for the same four keys (the text's definition
// in PROTOCOL.md), and parseCanonical to ParseOrigin's slow path: the
// same origin back from every canonical text.
func TestOriginStringIsEncode(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []rune("aZ09-_./ &=%+?#;:\x01\n\"'ü€😀")
	str := func(n int) string {
		r := make([]rune, rng.IntN(n+1))
		for i := range r {
			r[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return string(r)
	}
	for i := range 2000 {
		o := Origin{Input: Name{Bucket: "b", Key: "k" + str(20)}, Version: str(12), Transform: str(8), Args: ArgsDigest(str(4))}
		if i%3 == 0 {
			o.Input.Bucket = ""
		}
		want := url.Values{originArgs: {o.Args}, originInput: {o.Input.Bucket + "/" + o.Input.Key},
			originTransform: {o.Transform}, originVersion: {o.Version}}.Encode()
		got := o.String()
		if got != want {
			t.Fatalf("%+v: String() = %q, url.Values.Encode %q", o, got, want)
		}
		if o.Input.Validate() != nil {
			continue
		}
		p, ok := parseCanonical(got)
		if !ok || p != o {
			t.Fatalf("parseCanonical(%q) = %+v, %v; want %+v", got, p, ok, o)
		}
	}
}
