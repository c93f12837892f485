// Package netemu emulates a small data center on one Linux machine, for
// insitu's scale-out benchmark and its CI test: N hosts and a client, each
// in its own network namespace, joined through veth pairs to a bridge in a
// "switch" namespace, each link limited in rate (and, with sch_netem, in
// latency) by tc, each machine's processes capped in CPU by a cgroup.
//
// It needs root, the ip and tc commands (iproute2) and a cgroup hierarchy
// with the cpu controller: cgroup v2 (cpu.max, cpu.stat), or v1's cpu and
// cpuacct controllers (cpu.cfs_quota_us, cpuacct.usage) where v2 does not
// have it. [Supported] says what is missing.
//
// Only what netemu creates is touched: namespaces and cgroups named
// "inemu-PID-START-PIDNS-RANDOM" (the creating process's ID, its start
// time in clock ticks after boot, and the inode of its PID namespace), and
// the interfaces inside those namespaces. On cgroup v2 it writes "+cpu"
// only into the cgroup.subtree_control of its own run's cgroup; the
// hierarchy's root must already enable cpu for its children, and when it
// does not, [Supported] says which command does (netemu does not change it:
// that would change every other cgroup on the machine). The root
// namespace's interfaces and routes are left alone, and the emulated
// machines use the private subnet 10.231.0.0/24 inside their namespaces
// only (the client is 10.231.0.2, host i is 10.231.0.(10+i)), so runs in
// parallel do not collide.
//
// [Net.Close] stops every process left in the machines' cgroups and
// removes it all. [Start] first removes what a killed earlier run left
// behind, conservatively: only names of a run in this process's own PID
// namespace whose process is gone (no process with that ID, or one that
// started at another time, the ID having been reused). Names of runs in
// other PID namespaces (other containers sharing /run/netns or a cgroup
// hierarchy), and names in another format, are never removed: their
// process cannot be seen from here, so it may still be running.
package netemu

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrUnsupported is wrapped by the errors of [Supported] and [Start] when
// the machine cannot emulate hosts: not root, not Linux, no ip or tc, no
// cgroup with the cpu controller.
var ErrUnsupported = errors.New("netemu: cannot emulate hosts here")

// Defaults of [Options].
const (
	DefaultHosts = 3
	DefaultRate  = 1_000_000_000 // bits per second
	DefaultCPU   = 0.25
)

// cpuPeriod is the cgroup CPU period, in microseconds: 20ms, so that a
// small cap throttles in short slices (a quarter CPU runs 5ms of every 20)
// rather than in long stalls.
const cpuPeriod = 20_000

// cmdTimeout bounds each ip and tc command.
const cmdTimeout = 15 * time.Second

// Teardown bounds (Close and the removal of leftovers): each step (ip
// netns pids, ip netns del) gets stepTimeout of its own, so that a slow
// one does not leave the others no time; once teardownTimeout has passed
// in all, each remaining step gets only minStepTimeout (deleting a
// namespace normally takes milliseconds), so the whole is bounded by
// teardownTimeout plus minStepTimeout per step.
const (
	stepTimeout     = 5 * time.Second
	teardownTimeout = 60 * time.Second
	minStepTimeout  = time.Second
)

// stepContext returns the context of one teardown step begun now, in a
// teardown that should be over by deadline.
func stepContext(deadline time.Time) (context.Context, context.CancelFunc) {
	d := min(stepTimeout, max(time.Until(deadline), minStepTimeout))
	return context.WithTimeout(context.Background(), d)
}

// stopTimeout bounds each stage of stopping a machine's processes in
// Close: after SIGTERM, then after SIGKILL.
const stopTimeout = 10 * time.Second

// Options configure [Start]. A nil *Options means all defaults; so does the
// zero value of each field.
type Options struct {
	// Hosts is the number of emulated hosts. Default [DefaultHosts].
	Hosts int
	// Rate is each machine's link rate in bits per second, the same in
	// each direction (tbf on both ends of its veth pair). Default
	// [DefaultRate], 1 Gbit/s.
	Rate int64
	// Latency is the one-way delay added to every packet a machine sends
	// (sch_netem on the machine's end), so a round trip between two
	// machines takes twice as long. Default 0: no delay, and sch_netem is
	// not needed.
	Latency time.Duration
	// CPU is each host's CPU cap, in CPUs: 0.25 is a quarter of one CPU
	// (cpu.max "5000 20000"). Default [DefaultCPU].
	CPU float64
	// ClientCPU is the client's CPU cap, in CPUs. Default: CPU.
	ClientCPU float64
	// Logger gets a debug record per command and a warning per cleanup
	// failure. Default: discard.
	Logger *slog.Logger
}

func (o *Options) resolve() (Options, error) {
	var r Options
	if o != nil {
		r = *o
	}
	if r.Hosts == 0 {
		r.Hosts = DefaultHosts
	}
	if r.Rate == 0 {
		r.Rate = DefaultRate
	}
	if r.CPU == 0 {
		r.CPU = DefaultCPU
	}
	if r.ClientCPU == 0 {
		r.ClientCPU = r.CPU
	}
	if r.Logger == nil {
		r.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case r.Hosts < 1 || r.Hosts > 200:
		return r, fmt.Errorf("netemu: %d hosts; want 1 to 200", r.Hosts)
	case r.Rate < 8000:
		return r, fmt.Errorf("netemu: rate %d bit/s; want at least 8000", r.Rate)
	case r.Latency < 0 || r.Latency > 10*time.Second:
		return r, fmt.Errorf("netemu: latency %v; want 0 to 10s", r.Latency)
	case r.CPU < 0.01 || r.ClientCPU < 0.01:
		return r, fmt.Errorf("netemu: CPU caps %g and %g; want at least 0.01", r.CPU, r.ClientCPU)
	}
	return r, nil
}

// Net is a running emulation: its hosts and its client.
type Net struct {
	o       Options
	tag     string // "inemu-<pid>-<start>-<pidns>-<random>" (see owner)
	log     *slog.Logger
	cg      *cgroups
	nss     []string // created namespaces, switch first
	hosts   []*Host
	client  *Host
	once    sync.Once
	closeEr error
}

// Host is an emulated machine: a host or the client.
type Host struct {
	// Name is "h1", "h2", … for the hosts and "client" for the client.
	Name string
	// IP is the machine's address, reachable from the other machines only.
	IP netip.Addr
	// NetNS is the name of its network namespace (see ip-netns(8)).
	NetNS string
	// CPUShare is its CPU cap, in CPUs.
	CPUShare float64

	net *Net
	cg  *cgroup
}

// LinkStats count the bytes and packets of a machine's link, as its end of
// the veth pair sees them: Received came from the switch, Sent went to it.
type LinkStats struct {
	RxBytes, TxBytes     int64
	RxPackets, TxPackets int64
}

// Bytes is the bytes that crossed the link, both ways.
func (s LinkStats) Bytes() int64 { return s.RxBytes + s.TxBytes }

// Sub returns s minus an earlier reading.
func (s LinkStats) Sub(before LinkStats) LinkStats {
	return LinkStats{s.RxBytes - before.RxBytes, s.TxBytes - before.TxBytes, s.RxPackets - before.RxPackets, s.TxPackets - before.TxPackets}
}

// Supported returns nil when this machine can emulate hosts, else an error
// wrapping [ErrUnsupported] that says what is missing and how to get it.
func Supported() error {
	_, err := supported()
	return err
}

func supported() (*cgroupMounts, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("%w: it needs root (network namespaces, tc and cgroups)", ErrUnsupported)
	}
	for _, tool := range []string{"ip", "tc"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("%w: %s not found on PATH (install iproute2)", ErrUnsupported, tool)
		}
	}
	m, err := findCgroups()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	return m, nil
}

// prefix begins every name netemu gives a namespace or a cgroup.
const prefix = "inemu-"

// Start creates the switch, opts.Hosts hosts and the client, with their
// links and CPU caps. On failure everything it made is removed. Close the
// Net when done, also when the program fails: until then the namespaces,
// the cgroups and the processes in them stay.
func Start(ctx context.Context, opts *Options) (*Net, error) {
	o, err := opts.resolve()
	if err != nil {
		return nil, err
	}
	mounts, err := supported()
	if err != nil {
		return nil, err
	}
	var rnd [3]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("netemu: %w", err)
	}
	me, err := self()
	if err != nil {
		return nil, err
	}
	n := &Net{o: o, tag: fmt.Sprintf("%s%s-%s", prefix, me, hex.EncodeToString(rnd[:])), log: o.Logger}
	n.cleanLeftovers(ctx, mounts)
	if err := n.build(ctx, mounts); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

func (n *Net) build(ctx context.Context, mounts *cgroupMounts) error {
	cg, err := mounts.create(n.tag)
	n.cg = cg // nil on error: create removed what it made
	if err != nil {
		return err
	}
	sw := n.tag + "-sw"
	if err := n.ip(ctx, "netns", "add", sw); err != nil {
		return err
	}
	n.nss = append(n.nss, sw)
	if err := n.ip(ctx, "-n", sw, "link", "set", "lo", "up"); err != nil {
		return err
	}
	if err := n.ip(ctx, "-n", sw, "link", "add", "br0", "type", "bridge"); err != nil {
		return err
	}
	if err := n.ip(ctx, "-n", sw, "link", "set", "br0", "up"); err != nil {
		return err
	}
	n.client, err = n.machine(ctx, sw, "client", netip.AddrFrom4([4]byte{10, 231, 0, 2}), n.o.ClientCPU)
	if err != nil {
		return err
	}
	for i := 1; i <= n.o.Hosts; i++ {
		h, err := n.machine(ctx, sw, "h"+strconv.Itoa(i), netip.AddrFrom4([4]byte{10, 231, 0, byte(10 + i)}), n.o.CPU)
		if err != nil {
			return err
		}
		n.hosts = append(n.hosts, h)
	}
	return nil
}

// machine makes one machine: its namespace, its veth pair to the switch
// (its end "eth0", the switch's end named after it), the rate limits on
// both ends and its cgroup.
func (n *Net) machine(ctx context.Context, sw, name string, ip netip.Addr, cpu float64) (*Host, error) {
	ns := n.tag + "-" + name
	if err := n.ip(ctx, "netns", "add", ns); err != nil {
		return nil, err
	}
	n.nss = append(n.nss, ns)
	port := name
	steps := [][]string{
		{"-n", ns, "link", "set", "lo", "up"},
		{"-n", sw, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns},
		{"-n", sw, "link", "set", port, "master", "br0"},
		{"-n", sw, "link", "set", port, "up"},
		{"-n", ns, "addr", "add", ip.String() + "/24", "dev", "eth0"},
		{"-n", ns, "link", "set", "eth0", "up"},
	}
	for _, s := range steps {
		if err := n.ip(ctx, s...); err != nil {
			return nil, err
		}
	}
	rate := strconv.FormatInt(n.o.Rate, 10) + "bit"
	// A burst of 2ms at the rate, and at least 64 KiB: veth hands tbf
	// GSO packets of up to 64 KiB.
	burst := strconv.FormatInt(max(n.o.Rate/8/500, 64<<10), 10)
	tbf := []string{"root", "tbf", "rate", rate, "burst", burst, "latency", "100ms"}
	if err := n.tc(ctx, sw, append([]string{"qdisc", "add", "dev", port}, tbf...)...); err != nil {
		return nil, err
	}
	mine := append([]string{"qdisc", "add", "dev", "eth0"}, tbf...)
	if n.o.Latency > 0 {
		us := strconv.FormatInt(n.o.Latency.Microseconds(), 10) + "us"
		mine = []string{"qdisc", "add", "dev", "eth0", "root", "netem", "delay", us, "rate", rate, "limit", "100000"}
	}
	if err := n.tc(ctx, ns, mine...); err != nil {
		if n.o.Latency > 0 {
			return nil, fmt.Errorf("%w (Options.Latency needs sch_netem; 0 does without)", err)
		}
		return nil, err
	}
	g, err := n.cg.host(name, cpu)
	if err != nil {
		return nil, err
	}
	return &Host{Name: name, IP: ip, NetNS: ns, CPUShare: cpu, net: n, cg: g}, nil
}

// Hosts returns the hosts, h1 first.
func (n *Net) Hosts() []*Host { return n.hosts }

// Client returns the client machine.
func (n *Net) Client() *Host { return n.client }

// Close stops every process in the machines' cgroups (SIGTERM, then
// SIGKILL after 10s), deletes the namespaces (and with them the links)
// and removes the cgroups. It is safe to call more than once; later calls
// return the first one's result.
func (n *Net) Close() error {
	n.once.Do(func() {
		var errs []error
		if n.cg != nil {
			errs = append(errs, n.cg.stop(n.log))
		}
		// Processes that entered a namespace without the cgroup (none of
		// Command's do) would keep it alive: they are ours, stop them.
		deadline := time.Now().Add(teardownTimeout)
		for i := len(n.nss) - 1; i >= 0; i-- {
			if err := n.removeNetns(deadline, n.nss[i]); err != nil {
				errs = append(errs, err)
			}
		}
		if n.cg != nil {
			errs = append(errs, n.cg.remove())
		}
		n.closeEr = errors.Join(errs...)
	})
	return n.closeEr
}

// Command returns a command that runs name with args in h's network
// namespace and cgroup (ip netns exec, after /bin/sh has put itself into
// the cgroup: the program and all its children are capped from their first
// instruction). The process keeps this process's PID (each stage execs the
// next), so cmd.Process is the program itself. When ctx ends the program
// gets SIGTERM, and SIGKILL 10s later (Cmd.Cancel and Cmd.WaitDelay, which
// the caller may change).
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	var script strings.Builder
	for _, f := range h.cg.procFiles() {
		fmt.Fprintf(&script, "echo $$ > '%s' || exit 126; ", f)
	}
	script.WriteString(`exec ip netns exec "$0" "$@"`)
	cmd := exec.CommandContext(ctx, "/bin/sh", append([]string{"-c", script.String(), h.NetNS, name}, args...)...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = stopTimeout
	return cmd
}

// Link returns the counters of h's link so far.
func (h *Host) Link(ctx context.Context) (LinkStats, error) {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", "-n", h.NetNS, "-s", "-j", "link", "show", "dev", "eth0").Output()
	if err != nil {
		return LinkStats{}, fmt.Errorf("netemu: %s's link counters: %w", h.Name, cmdError(err))
	}
	var links []struct {
		Stats struct {
			Rx struct{ Bytes, Packets int64 }
			Tx struct{ Bytes, Packets int64 }
		} `json:"stats64"`
	}
	if err := json.Unmarshal(out, &links); err != nil || len(links) != 1 {
		return LinkStats{}, fmt.Errorf("netemu: %s's link counters: unexpected output of ip -j: %.200q", h.Name, out)
	}
	s := links[0].Stats
	return LinkStats{RxBytes: s.Rx.Bytes, TxBytes: s.Tx.Bytes, RxPackets: s.Rx.Packets, TxPackets: s.Tx.Packets}, nil
}

// CPU returns the CPU time that the processes in h's cgroup have used so
// far, the exited ones included.
func (h *Host) CPU() (time.Duration, error) { return h.cg.usage() }

// Throttled returns how long h's processes were held back by the CPU cap so
// far.
func (h *Host) Throttled() (time.Duration, error) { return h.cg.throttled() }

// ip runs ip with args, bounded by cmdTimeout.
func (n *Net) ip(ctx context.Context, args ...string) error {
	return run(ctx, n.log, "ip", args...)
}

// tc runs tc with args in the namespace ns.
func (n *Net) tc(ctx context.Context, ns string, args ...string) error {
	return run(ctx, n.log, "ip", append([]string{"netns", "exec", ns, "tc"}, args...)...)
}

func run(ctx context.Context, log *slog.Logger, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	log.Debug("netemu", "cmd", name+" "+strings.Join(args, " "))
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 500 {
			msg = msg[:500]
		}
		return fmt.Errorf("netemu: %s %s: %w: %s", name, strings.Join(args, " "), err, msg)
	}
	return nil
}

func cmdError(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(ee.Stderr) > 0 {
		return fmt.Errorf("%w: %s", err, bytes.TrimSpace(ee.Stderr))
	}
	return err
}

// removeNetns kills the processes in the namespace ns and deletes it, each
// step bounded by stepContext.
func (n *Net) removeNetns(deadline time.Time, ns string) error {
	ctx, cancel := stepContext(deadline)
	killNetnsPids(ctx, ns, n.log)
	cancel()
	ctx, cancel = stepContext(deadline)
	defer cancel()
	return n.ip(ctx, "netns", "del", ns)
}

// killNetnsPids SIGKILLs the processes that ip netns pids lists in ns.
func killNetnsPids(ctx context.Context, ns string, log *slog.Logger) {
	out, err := exec.CommandContext(ctx, "ip", "netns", "pids", ns).Output()
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() {
			log.Warn("netemu: killing a process left in a namespace", "netns", ns, "pid", pid)
			if p, err := os.FindProcess(pid); err == nil {
				p.Kill()
			}
		}
	}
}

// owner is what a run's names record of the process that made them: its
// PID, its start time (field 22 of /proc/PID/stat, clock ticks after
// boot) and the inode of its PID namespace. Formatted "PID-START-PIDNS".
type owner struct {
	pid   int
	start uint64
	pidns uint64
}

func (o owner) String() string { return fmt.Sprintf("%d-%d-%d", o.pid, o.start, o.pidns) }

// self returns this process's owner.
func self() (owner, error) {
	pid := os.Getpid()
	start, err := startTime(pid)
	if err != nil {
		return owner{}, fmt.Errorf("netemu: %w", err)
	}
	ns, err := pidNamespace()
	if err != nil {
		return owner{}, fmt.Errorf("netemu: %w", err)
	}
	return owner{pid, start, ns}, nil
}

// startTime returns field 22 of /proc/pid/stat: when the process started,
// in clock ticks after boot.
func startTime(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// pid (comm) state ppid …: comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if i < 0 || len(f) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// pidNamespace returns the inode of this process's PID namespace.
func pidNamespace() (uint64, error) {
	l, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return 0, err
	}
	s, ok := strings.CutPrefix(l, "pid:[")
	s, ok2 := strings.CutSuffix(s, "]")
	if !ok || !ok2 {
		return 0, fmt.Errorf("/proc/self/ns/pid: unexpected link %q", l)
	}
	return strconv.ParseUint(s, 10, 64)
}

// parseOwner returns the owner recorded in a name that netemu gave a
// namespace or cgroup, "inemu-PID-START-PIDNS-…".
func parseOwner(name string) (owner, bool) {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return owner{}, false
	}
	f := strings.SplitN(rest, "-", 4)
	if len(f) < 4 {
		return owner{}, false
	}
	pid, err1 := strconv.Atoi(f[0])
	start, err2 := strconv.ParseUint(f[1], 10, 64)
	ns, err3 := strconv.ParseUint(f[2], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || pid <= 0 {
		return owner{}, false
	}
	return owner{pid, start, ns}, true
}

// leftover reports whether name is the namespace or cgroup of a run that
// ended without closing its Net, judged conservatively: the run was in
// this PID namespace (me's), and no process with its PID and start time
// exists. Names of other PID namespaces or other formats are not.
func leftover(name string, me owner) bool {
	o, ok := parseOwner(name)
	if !ok || o.pidns != me.pidns || o == me {
		return false
	}
	start, err := startTime(o.pid)
	if err == nil {
		return start != o.start // the PID was reused
	}
	return errors.Is(err, os.ErrNotExist)
}

// cleanLeftovers removes the namespaces and cgroups of earlier runs for
// which leftover holds, and stops what still runs in them.
func (n *Net) cleanLeftovers(ctx context.Context, mounts *cgroupMounts) {
	me, ok := parseOwner(n.tag)
	if !ok {
		return
	}
	dead := func(name string) bool { return leftover(name, me) }
	for _, tag := range mounts.leftovers(dead) {
		n.log.Warn("netemu: removing the cgroups of a run that was killed", "tag", tag)
		if err := mounts.removeTag(tag, n.log); err != nil {
			n.log.Warn("netemu: removing a leftover cgroup", "err", err)
		}
	}
	lctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	out, err := exec.CommandContext(lctx, "ip", "netns", "list").Output()
	cancel()
	if err != nil {
		return
	}
	deadline := time.Now().Add(teardownTimeout)
	for line := range strings.Lines(string(out)) {
		fields := strings.Fields(line)
		if len(fields) == 0 || !dead(fields[0]) {
			continue
		}
		n.log.Warn("netemu: removing the namespace of a run that was killed", "netns", fields[0])
		if err := n.removeNetns(deadline, fields[0]); err != nil {
			n.log.Warn("netemu: removing a leftover namespace", "err", err)
		}
	}
}
