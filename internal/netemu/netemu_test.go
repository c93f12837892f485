package netemu_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/insitu-data/insitu/internal/netemu"
)

// The tests run parts of themselves inside the emulated machines: the test
// binary again, with $NETEMU_TEST_CHILD naming the part, which TestMain
// runs instead of the tests.
//
//   - "serve ADDR N": listen on ADDR, print "READY", and send N
//     deterministic bytes to each connection;
//   - "fetch ADDR": read everything from ADDR and print "N SHA256".
const childEnv = "NETEMU_TEST_CHILD"

func TestMain(m *testing.M) {
	if v := os.Getenv(childEnv); v != "" {
		os.Exit(child(strings.Fields(v)))
	}
	os.Exit(m.Run())
}

// payload returns n deterministic bytes.
func payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>9)
	}
	return b
}

func child(args []string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	switch {
	case len(args) == 1 && args[0] == "start":
		return startChild()
	case len(args) == 3 && args[0] == "serve":
		n, _ := strconv.Atoi(args[2])
		var lc net.ListenConfig
		ln, err := lc.Listen(ctx, "tcp", args[1])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println("READY")
		for {
			c, err := ln.Accept()
			if err != nil {
				return 1
			}
			c.SetDeadline(time.Now().Add(30 * time.Second))
			c.Write(payload(n))
			c.Close()
		}
	case len(args) == 2 && args[0] == "fetch":
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", args[1])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(30 * time.Second))
		h := sha256.New()
		n, err := io.Copy(h, c)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println(n, hex.EncodeToString(h.Sum(nil)))
		return 0
	}
	fmt.Fprintf(os.Stderr, "bad child %q\n", args)
	return 2
}

// requireSupported skips t, saying why, when this machine cannot emulate
// hosts; with CI=true it fails instead: CI runs as root with ip and tc.
func requireSupported(t *testing.T) {
	t.Helper()
	err := netemu.Supported()
	if err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%v; CI=true: CI must run this test as root with iproute2 and cgroups", err)
	}
	t.Skipf("%v (run as root on Linux with iproute2; CI=true makes this a failure)", err)
}

// childCmd returns the test binary as the child args, on h.
func childCmd(ctx context.Context, t *testing.T, h *netemu.Host, args string) *exec.Cmd {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := h.Command(ctx, exe)
	cmd.Env = append(os.Environ(), childEnv+"="+args)
	return cmd
}

// TestNet: a 2-host net: a host serves 1 MiB to the client; the client
// gets every byte; its link counted them, and the other host's link none
// of them; the server ran in its host's cgroup, which counted its CPU; and
// Close stops the server, removes every namespace and cgroup, and is
// idempotent.
func TestNet(t *testing.T) {
	requireSupported(t)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	n, err := netemu.Start(ctx, &netemu.Options{Hosts: 2, Rate: 200_000_000, CPU: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			n.Close()
		}
	}()
	hosts, client := n.Hosts(), n.Client()
	if len(hosts) != 2 || hosts[0].Name != "h1" || hosts[1].IP.String() != "10.231.0.12" || client.IP.String() != "10.231.0.2" {
		t.Fatalf("hosts %v, client %v", hosts, client)
	}

	const size = 1 << 20
	addr := net.JoinHostPort(hosts[0].IP.String(), "7700")
	srv := childCmd(ctx, t, hosts[0], "serve "+addr+" "+strconv.Itoa(size))
	out, err := srv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	srv.Stderr = os.Stderr
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	sc := bufio.NewScanner(out)
	if !sc.Scan() || sc.Text() != "READY" {
		t.Fatalf("the server did not start: %q, %v", sc.Text(), srv.Wait())
	}
	go func() { served <- srv.Wait() }()
	cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", srv.Process.Pid))
	if err != nil || !strings.Contains(string(cg), "/h1") {
		t.Errorf("the server's cgroups: %q, %v", cg, err)
	}

	before, err := client.Link(ctx)
	if err != nil {
		t.Fatal(err)
	}
	other0, err := hosts[1].Link(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, err := childCmd(ctx, t, client, "fetch "+addr).Output()
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	sum := sha256.Sum256(payload(size))
	if want := fmt.Sprintf("%d %x\n", size, sum); string(got) != want {
		t.Errorf("the client got %q, want %q", got, want)
	}
	after, err := client.Link(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d := after.Sub(before)
	// TCP and IP headers add a few percent; the ACKs go the other way.
	if d.RxBytes < size || d.RxBytes > size*11/10 || d.TxBytes > size/10 {
		t.Errorf("the client's link counted %+v for %d bytes received", d, size)
	}
	other1, err := hosts[1].Link(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if b := other1.Sub(other0).Bytes(); b > 4<<10 {
		t.Errorf("h2's link carried %d bytes of a transfer between h1 and the client", b)
	}
	if cpu, err := hosts[0].CPU(); err != nil || cpu <= 0 {
		t.Errorf("h1's CPU: %v, %v", cpu, err)
	}
	if _, err := hosts[0].Throttled(); err != nil {
		t.Error(err)
	}

	closed = true
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-served:
		if err == nil {
			t.Error("the server exited 0; want it stopped by a signal")
		}
	case <-ctx.Done():
		t.Fatal("the server outlived Close")
	}
	if err := n.Close(); err != nil {
		t.Errorf("the second Close: %v", err)
	}
	assertGone(t, hosts[0].NetNS)
}

// assertGone fails t if the namespaces or cgroups of the run that named ns
// are still there.
func assertGone(t *testing.T, ns string) {
	t.Helper()
	tag := ns[:strings.LastIndex(ns, "-")]
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), tag) {
		t.Errorf("namespaces of %s remain:\n%s", tag, out)
	}
	if m, _ := filepath.Glob("/sys/fs/cgroup/*/" + tag); len(m) > 0 {
		t.Errorf("cgroups remain: %v", m)
	}
	if m, _ := filepath.Glob("/sys/fs/cgroup/" + tag); len(m) > 0 {
		t.Errorf("cgroups remain: %v", m)
	}
}

// TestLeftovers: Start removes the namespaces and cgroups that a killed
// run left, and stops the process left in them.
func TestLeftovers(t *testing.T) {
	requireSupported(t)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// A run that is killed before it can close its Net, with a server
	// running on its host.
	killed := exec.CommandContext(ctx, exe)
	killed.Env = append(os.Environ(), childEnv+"=start")
	killed.Stderr = os.Stderr
	out, err := killed.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := killed.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	if !sc.Scan() {
		t.Fatalf("the run did not start: %v", killed.Wait())
	}
	ns, pidStr, _ := strings.Cut(sc.Text(), " ")
	pid, _ := strconv.Atoi(pidStr)
	killed.Process.Kill()
	killed.Wait()
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("the killed run's server is not running: %v", err)
	}

	n, err := netemu.Start(ctx, &netemu.Options{Hosts: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Error(err)
	}
	assertGone(t, ns)
	// The server was a child of the killed run: once killed it is reaped
	// by init, and Kill(pid, 0) fails.
	for range 500 {
		if syscall.Kill(pid, 0) != nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("the killed run's server, pid %d, still runs", pid)
}

// startChild is the "start" child: a run of one host with a server on it,
// printing "NETNS PID" of the host and the server, then waiting to be
// killed.
func startChild() int {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, err := netemu.Start(ctx, &netemu.Options{Hosts: 1})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer n.Close()
	exe, _ := os.Executable()
	h := n.Hosts()[0]
	srv := h.Command(ctx, exe)
	srv.Env = append(os.Environ(), childEnv+"=serve 127.0.0.1:7701 1")
	out, _ := srv.StdoutPipe()
	if err := srv.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	sc := bufio.NewScanner(out)
	sc.Scan()
	fmt.Println(h.NetNS, srv.Process.Pid)
	<-ctx.Done()
	return 1
}
