package netemu

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cgroupMounts are where the cpu controller is: a cgroup v2 hierarchy
// (v2 set), or the v1 hierarchies of cpu (cpu.cfs_quota_us) and cpuacct
// (cpuacct.usage), which may be one.
type cgroupMounts struct {
	v2        string
	cpu, acct string
}

// findCgroups reads /proc/self/mountinfo for a hierarchy with the cpu
// controller: v2 first, then v1.
func findCgroups() (*cgroupMounts, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("no /proc/self/mountinfo (not Linux?): %v", err)
	}
	defer f.Close()
	var m cgroupMounts
	var v2 []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent major:minor root mountpoint opts [optional...] - fstype source superopts
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if !ok || len(pf) < 5 || len(qf) < 3 {
			continue
		}
		mnt := pf[4]
		switch qf[0] {
		case "cgroup2":
			v2 = append(v2, mnt)
		case "cgroup":
			opts := strings.Split(qf[2], ",")
			if slices.Contains(opts, "cpu") && m.cpu == "" {
				m.cpu = mnt
			}
			if slices.Contains(opts, "cpuacct") && m.acct == "" {
				m.acct = mnt
			}
		}
	}
	var v2Err error
	for _, mnt := range v2 {
		ok, err := v2Usable(mnt)
		if ok {
			return &cgroupMounts{v2: mnt}, nil
		}
		if err != nil && v2Err == nil {
			v2Err = err
		}
	}
	if m.cpu != "" && m.acct != "" {
		return &m, nil
	}
	if v2Err != nil {
		return nil, v2Err
	}
	return nil, errors.New("no cgroup hierarchy has the cpu controller (cgroup v2 with cpu in cgroup.controllers, or v1's cpu and cpuacct)")
}

// v2Usable reports whether the cgroup v2 hierarchy mounted at mnt lets
// netemu's cgroups use the cpu controller: its root has cpu in
// cgroup.controllers and already enables it for its children in
// cgroup.subtree_control. netemu does not enable it there itself (that
// would change the machine's other cgroups, and undoing it in Close could
// drop another user's CPU limits); when the controller is present but not
// enabled, the error says which command enables it.
func v2Usable(mnt string) (bool, error) {
	b, err := os.ReadFile(filepath.Join(mnt, "cgroup.controllers"))
	if err != nil || !slices.Contains(strings.Fields(string(b)), "cpu") {
		return false, nil
	}
	f := filepath.Join(mnt, "cgroup.subtree_control")
	b, err = os.ReadFile(f)
	if err == nil && slices.Contains(strings.Fields(string(b)), "cpu") {
		return true, nil
	}
	return false, fmt.Errorf("the cgroup v2 hierarchy %s has the cpu controller but does not enable it for its children; netemu does not change cgroups it did not create: run `echo +cpu > %s` as root", mnt, f)
}

// dirs returns the hierarchy directories a cgroup named rel lives in.
func (m *cgroupMounts) dirs(rel string) []string {
	if m.v2 != "" {
		return []string{filepath.Join(m.v2, rel)}
	}
	if m.cpu == m.acct {
		return []string{filepath.Join(m.cpu, rel)}
	}
	return []string{filepath.Join(m.cpu, rel), filepath.Join(m.acct, rel)}
}

// create makes the parent cgroup of a run, tag. On failure it removes
// the directories it made. On cgroup v2 it enables the cpu controller in
// the parent only (for the machines' cgroups); the hierarchy's root must
// already enable it (see v2Usable).
func (m *cgroupMounts) create(tag string) (*cgroups, error) {
	c := &cgroups{m: m, tag: tag}
	err := func() error {
		for _, d := range m.dirs(tag) {
			if err := os.Mkdir(d, 0o755); err != nil {
				return fmt.Errorf("netemu: cgroup: %w", err)
			}
			c.made = append(c.made, d)
		}
		if m.v2 != "" {
			return enableCPU(c.made[0])
		}
		return nil
	}()
	if err != nil {
		return nil, errors.Join(err, c.remove())
	}
	return c, nil
}

// enableCPU adds the cpu controller to dir's cgroup.subtree_control.
func enableCPU(dir string) error {
	f := filepath.Join(dir, "cgroup.subtree_control")
	b, err := os.ReadFile(f)
	if err == nil && slices.Contains(strings.Fields(string(b)), "cpu") {
		return nil
	}
	if err := os.WriteFile(f, []byte("+cpu"), 0); err != nil {
		return fmt.Errorf("netemu: enabling the cpu controller in %s: %w", dir, err)
	}
	return nil
}

// leftovers returns the run tags that have a cgroup and for which dead
// holds.
func (m *cgroupMounts) leftovers(dead func(tag string) bool) []string {
	var tags []string
	for _, root := range m.dirs("") {
		ents, _ := os.ReadDir(root)
		for _, e := range ents {
			if e.IsDir() && dead(e.Name()) && !slices.Contains(tags, e.Name()) {
				tags = append(tags, e.Name())
			}
		}
	}
	return tags
}

// removeTag stops the processes in a run's cgroups and removes them.
func (m *cgroupMounts) removeTag(tag string, log *slog.Logger) error {
	c := &cgroups{m: m, tag: tag}
	for _, d := range m.dirs(tag) {
		ents, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if e.IsDir() {
				c.hosts = appendHost(c.hosts, e.Name(), m)
			}
		}
		c.made = append(c.made, d)
	}
	return errors.Join(c.stop(log), c.remove())
}

func appendHost(hosts []*cgroup, name string, m *cgroupMounts) []*cgroup {
	for _, h := range hosts {
		if h.name == name {
			return hosts
		}
	}
	return append(hosts, &cgroup{name: name, m: m})
}

// cgroups are a run's cgroups: a parent named after the run, a child per
// machine.
type cgroups struct {
	m     *cgroupMounts
	tag   string
	made  []string // directories of the parent, created
	hosts []*cgroup
}

// cgroup is one machine's cgroup.
type cgroup struct {
	m    *cgroupMounts
	name string
	dirs []string // its directories (one per hierarchy)
}

// host makes the cgroup of a machine, capped at cpu CPUs.
func (c *cgroups) host(name string, cpu float64) (*cgroup, error) {
	g := &cgroup{m: c.m, name: name}
	for _, d := range c.m.dirs(filepath.Join(c.tag, name)) {
		if err := os.Mkdir(d, 0o755); err != nil {
			return nil, fmt.Errorf("netemu: cgroup: %w", err)
		}
		// Recorded as soon as made, so that remove takes it (and then
		// the parent) also when a later step fails.
		if len(g.dirs) == 0 {
			c.hosts = append(c.hosts, g)
		}
		g.dirs = append(g.dirs, d)
	}
	quota := strconv.FormatInt(int64(cpu*cpuPeriod), 10)
	var err error
	if c.m.v2 != "" {
		err = os.WriteFile(filepath.Join(g.dirs[0], "cpu.max"), []byte(quota+" "+strconv.Itoa(cpuPeriod)), 0)
	} else {
		err = os.WriteFile(filepath.Join(g.dirs[0], "cpu.cfs_period_us"), []byte(strconv.Itoa(cpuPeriod)), 0)
		if err == nil {
			err = os.WriteFile(filepath.Join(g.dirs[0], "cpu.cfs_quota_us"), []byte(quota), 0)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("netemu: capping %s's CPU: %w", name, err)
	}
	return g, nil
}

// procFiles are the files a process writes its PID to, to join g.
func (g *cgroup) procFiles() []string {
	var fs []string
	for _, d := range g.dirs {
		fs = append(fs, filepath.Join(d, "cgroup.procs"))
	}
	return fs
}

// usage is the CPU time of g's processes.
func (g *cgroup) usage() (time.Duration, error) {
	if g.m.v2 != "" {
		v, err := statField(filepath.Join(g.dirs[0], "cpu.stat"), "usage_usec")
		return time.Duration(v) * time.Microsecond, err
	}
	b, err := os.ReadFile(filepath.Join(g.dirs[len(g.dirs)-1], "cpuacct.usage"))
	if err != nil {
		return 0, fmt.Errorf("netemu: %w", err)
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("netemu: cpuacct.usage: %w", err)
	}
	return time.Duration(v), nil
}

// throttled is how long g's processes waited for the CPU cap.
func (g *cgroup) throttled() (time.Duration, error) {
	if g.m.v2 != "" {
		v, err := statField(filepath.Join(g.dirs[0], "cpu.stat"), "throttled_usec")
		return time.Duration(v) * time.Microsecond, err
	}
	v, err := statField(filepath.Join(g.dirs[0], "cpu.stat"), "throttled_time")
	return time.Duration(v), err
}

func statField(path, field string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("netemu: %w", err)
	}
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), " "); ok && k == field {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("netemu: %s: %s: %w", path, field, err)
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("netemu: %s has no %s", path, field)
}

// pids returns the processes in g.
func (g *cgroup) pids() []int {
	var pids []int
	for _, f := range g.procFiles() {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, s := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(s); err == nil && !slices.Contains(pids, pid) {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// stop ends the processes in every machine's cgroup: SIGTERM, and SIGKILL
// to those left after stopTimeout.
func (c *cgroups) stop(log *slog.Logger) error {
	all := func() []int {
		var pids []int
		for _, g := range c.hosts {
			if len(g.dirs) == 0 {
				g.dirs = c.m.dirs(filepath.Join(c.tag, g.name))
			}
			pids = append(pids, g.pids()...)
		}
		return pids
	}
	for i, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		pids := all()
		if len(pids) == 0 {
			return nil
		}
		if i > 0 {
			log.Warn("netemu: processes did not end on SIGTERM", "pids", pids)
		}
		for _, pid := range pids {
			if pid > 1 && pid != os.Getpid() {
				syscall.Kill(pid, sig)
			}
		}
		deadline := time.Now().Add(stopTimeout)
		for len(all()) > 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if pids := all(); len(pids) > 0 {
		return fmt.Errorf("netemu: processes %v outlived SIGKILL", pids)
	}
	return nil
}

// remove removes the machines' cgroups and the parent (they must be empty).
func (c *cgroups) remove() error {
	var errs []error
	for _, g := range c.hosts {
		for _, d := range g.dirs {
			if err := rmdir(d); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, d := range c.made {
		if err := rmdir(d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// rmdir removes a cgroup directory; one already gone is fine. A cgroup
// whose last process just exited may be busy for a moment.
func rmdir(d string) error {
	var err error
	for range 50 {
		err = syscall.Rmdir(d)
		if err == nil || errors.Is(err, syscall.ENOENT) {
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("netemu: removing cgroup %s: %w", d, err)
}
