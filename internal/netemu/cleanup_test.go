package netemu

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mountsOrSkip returns this machine's cgroup mounts, or skips t.
func mountsOrSkip(t *testing.T) *cgroupMounts {
	t.Helper()
	m, err := supported()
	if err != nil {
		t.Skip(err)
	}
	return m
}

func testTag(t *testing.T) string {
	var rnd [3]byte
	rand.Read(rnd[:])
	return prefix + "test-" + hex.EncodeToString(rnd[:])
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// TestCreateFailureRemovesDirs: when create fails after making the run's
// directory in one hierarchy (here: it already exists in the next), the
// directory it made is removed.
func TestCreateFailureRemovesDirs(t *testing.T) {
	m := mountsOrSkip(t)
	tag := testTag(t)
	dirs := m.dirs(tag)
	if len(dirs) < 2 {
		t.Skip("one cgroup hierarchy: create cannot fail half way")
	}
	if err := os.Mkdir(dirs[1], 0o755); err != nil {
		t.Fatal(err)
	}
	defer rmdir(dirs[1])
	c, err := m.create(tag)
	if !errors.Is(err, os.ErrExist) || c != nil {
		t.Fatalf("create = %v, %v; want nil, EEXIST", c, err)
	}
	if exists(dirs[0]) {
		rmdir(dirs[0])
		t.Errorf("create left %s", dirs[0])
	}
}

// TestHostFailureRemovable: when host fails after making the machine's
// directory in one hierarchy, remove still removes it and the parent.
func TestHostFailureRemovable(t *testing.T) {
	m := mountsOrSkip(t)
	tag := testTag(t)
	hd := m.dirs(filepath.Join(tag, "h1"))
	if len(hd) < 2 {
		t.Skip("one cgroup hierarchy: host cannot fail half way")
	}
	c, err := m.create(tag)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, d := range append(hd, m.dirs(tag)...) {
			rmdir(d)
		}
	}()
	if err := os.Mkdir(hd[1], 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := c.host("h1", 0.5); !errors.Is(err, os.ErrExist) {
		t.Fatalf("host: %v; want EEXIST", err)
	}
	if err := rmdir(hd[1]); err != nil {
		t.Fatal(err)
	}
	if err := c.remove(); err != nil {
		t.Fatalf("remove after a failed host: %v", err)
	}
	for _, d := range append(hd, m.dirs(tag)...) {
		if exists(d) {
			t.Errorf("%s remains", d)
		}
	}
}

// TestV2Usable: a cgroup v2 root that has the cpu controller but does not
// enable it for its children is reported with the command that does, and
// left unchanged.
func TestV2Usable(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("cgroup.controllers", "cpuset cpu io memory pids\n")
	write("cgroup.subtree_control", "memory pids\n")
	ok, err := v2Usable(dir)
	if ok || err == nil || !strings.Contains(err.Error(), "echo +cpu > "+filepath.Join(dir, "cgroup.subtree_control")) {
		t.Errorf("without cpu in subtree_control: %v, %v", ok, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control")); string(b) != "memory pids\n" {
		t.Errorf("subtree_control changed to %q", b)
	}
	write("cgroup.subtree_control", "cpu memory pids\n")
	if ok, err := v2Usable(dir); !ok || err != nil {
		t.Errorf("with cpu in subtree_control: %v, %v", ok, err)
	}
	write("cgroup.controllers", "memory pids\n")
	if ok, err := v2Usable(dir); ok || err != nil {
		t.Errorf("without the cpu controller: %v, %v", ok, err)
	}
}

// TestStepContext: a teardown step begun after the overall deadline still
// gets time of its own, and none gets more than stepTimeout.
func TestStepContext(t *testing.T) {
	for _, late := range []time.Duration{-time.Hour, 0, time.Hour} {
		ctx, cancel := stepContext(time.Now().Add(late))
		dl, ok := ctx.Deadline()
		left := time.Until(dl)
		if !ok || ctx.Err() != nil || left < minStepTimeout/2 || left > stepTimeout {
			t.Errorf("deadline %v from now: step has %v left, err %v", late, left, ctx.Err())
		}
		cancel()
	}
}

// TestLeftoverRule: Start removes the namespaces and cgroups of a dead run
// of this PID namespace (no such PID; or this PID with another start time)
// and leaves those of another PID namespace, and of an unknown format,
// although no process here has their PID.
func TestLeftoverRule(t *testing.T) {
	m := mountsOrSkip(t)
	me, err := self()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("/proc/sys/kernel/pid_max")
	if err != nil {
		t.Fatal(err)
	}
	pidMax, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	gone := pidMax + 1 // no process has it
	rnd := strings.TrimPrefix(testTag(t), prefix+"test-")
	foreign := owner{gone, 1, me.pidns + 1}.String()
	dead := owner{gone, 1, me.pidns}.String()
	reused := owner{me.pid, me.start + 1, me.pidns}.String()
	names := map[string]bool{ // name: removed by Start
		prefix + foreign + "-" + rnd:                false,
		prefix + strconv.Itoa(gone) + "-" + rnd[:6]: false,
		prefix + dead + "-" + rnd:                   true,
		prefix + reused + "-" + rnd:                 true,
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	for name := range names {
		t.Cleanup(func() {
			exec.Command("ip", "netns", "del", name+"-sw").Run()
			for _, d := range m.dirs(name) {
				syscall.Rmdir(d)
			}
		})
		if out, err := exec.CommandContext(ctx, "ip", "netns", "add", name+"-sw").CombinedOutput(); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		for _, d := range m.dirs(name) {
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	n, err := Start(ctx, &Options{Hosts: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Error(err)
	}
	for name, removed := range names {
		if got := !exists("/run/netns/" + name + "-sw"); got != removed {
			t.Errorf("namespace %s: removed %v, want %v", name, got, removed)
		}
		for _, d := range m.dirs(name) {
			if got := !exists(d); got != removed {
				t.Errorf("cgroup %s: removed %v, want %v", d, got, removed)
			}
		}
	}
}
