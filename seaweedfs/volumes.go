package seaweedfs

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/insitu-data/insitu"
)

// locations remembers which volume servers hold each volume, for
// Options.LocationTTL, from the master's /dir/lookup and /vol/status.
type locations struct {
	c  *Client
	mu sync.Mutex
	m  map[uint32]located
}

type located struct {
	servers []string // sorted; empty when the master knows no live server
	at      time.Time
}

func newLocations(c *Client) *locations {
	return &locations{c: c, m: map[uint32]located{}}
}

// cached returns the remembered servers of vid when they are fresh.
func (l *locations) cached(vid uint32) ([]string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.m[vid]
	if !ok || len(e.servers) == 0 || time.Since(e.at) > l.c.opts.LocationTTL {
		// No server: ask again each time, to see it come back at once.
		return nil, false
	}
	return e.servers, true
}

func (l *locations) store(vid uint32, servers []string, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.m[vid] = located{servers: servers, at: at}
}

// forget drops what is remembered of vid, after a read from one of its
// servers failed.
func (l *locations) forget(vid uint32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.m, vid)
}

// lookup returns the servers of vid: remembered ones unless fresh is set,
// else the master's answer to /dir/lookup. A volume the master knows no
// live server of has none (not an error). A master that does not answer is
// Unavailable; an answer that is not a master's is InvalidArgument.
func (l *locations) lookup(ctx context.Context, vid uint32, name insitu.Name, fresh bool) ([]string, error) {
	if !fresh {
		if s, ok := l.cached(vid); ok {
			return s, nil
		}
	}
	var res struct {
		VolumeOrFileID string `json:"volumeOrFileId"`
		Locations      []struct {
			URL string `json:"url"`
		} `json:"locations"`
		Error string `json:"error"`
	}
	at := time.Now()
	u := l.c.master + "/dir/lookup?" + url.Values{"volumeId": {strconv.FormatUint(uint64(vid), 10)}}.Encode()
	what := "the master's /dir/lookup of volume " + strconv.FormatUint(uint64(vid), 10)
	err := l.c.getJSON(ctx, u, nil, what, name, &res)
	var se *statusError
	switch {
	case errors.As(err, &se) && se.status == 404:
		// "volume id N not found": no live server holds it now. A 404
		// from something else than a master has no such JSON.
		if !se.json {
			return nil, l.c.notAMaster(name, what, se)
		}
	case err != nil:
		return nil, l.c.checkMaster(err, name, what)
	case res.VolumeOrFileID == "":
		return nil, l.c.notAMaster(name, what, nil)
	}
	var servers []string
	for _, loc := range res.Locations {
		servers = append(servers, loc.URL)
	}
	slices.Sort(servers)
	l.store(vid, servers, at)
	return servers, nil
}

// snapshot reads every volume's servers from the master's /vol/status in
// one request, remembers them (and forgets the volumes it does not list),
// and returns them: a listing calls it once, rather than asking
// /dir/lookup volume by volume.
func (l *locations) snapshot(ctx context.Context, name insitu.Name) (map[uint32][]string, error) {
	var res struct {
		Volumes struct {
			DataCenters map[string]map[string]map[string][]struct {
				ID uint32 `json:"Id"`
			}
		}
	}
	at := time.Now()
	what := "the master's /vol/status"
	if err := l.c.getJSON(ctx, l.c.master+"/vol/status", nil, what, name, &res); err != nil {
		return nil, l.c.checkMaster(err, name, what)
	}
	if res.Volumes.DataCenters == nil {
		return nil, l.c.notAMaster(name, what, nil)
	}
	byVol := map[uint32][]string{}
	for _, racks := range res.Volumes.DataCenters {
		for _, nodes := range racks {
			for node, vols := range nodes {
				for _, v := range vols {
					byVol[v.ID] = append(byVol[v.ID], node)
				}
			}
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for vid, e := range l.m {
		if _, ok := byVol[vid]; !ok && e.at.Before(at) {
			delete(l.m, vid) // gone since, or not a plain volume: ask /dir/lookup
		}
	}
	for vid, servers := range byVol {
		slices.Sort(servers)
		l.m[vid] = located{servers: servers, at: at}
	}
	return byVol, nil
}

// notAMaster returns the InvalidArgument error of a server at the master
// URL that is not a master.
func (c *Client) notAMaster(name insitu.Name, what string, cause error) error {
	return &insitu.Error{Code: insitu.InvalidArgument, Name: name,
		Msg: what + ": " + c.master + " is not a SeaweedFS master (no JSON answer of a master)", Err: cause}
}

// checkMaster turns an answer of the master URL that cannot be a master's
// (a status other than 200 with no JSON error) into "not a master".
func (c *Client) checkMaster(err error, name insitu.Name, what string) error {
	var se *statusError
	if errors.As(err, &se) && se.status < 500 && !se.json {
		return c.notAMaster(name, what, se)
	}
	return err
}
