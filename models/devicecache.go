package models

import (
	"sync"
	"time"

	"gorm.io/gorm"
)

// recentDevices remembers the devices this process stored in the last
// minute, so a device's next events skip the device upsert: most visitors
// send several events within seconds. A device's first/last seen times are
// therefore exact to the minute. Entries are added only after their commit;
// deleting devices (erasing a lead) forgets them (forgetRecentDevices), and
// other replicas forget theirs within the minute, after which the device
// row is recreated.
type recentDevices struct {
	mu sync.Mutex
	m  map[DeviceKey]recentDevice
	// forgets counts forget calls: a commit that began before one does not
	// remember its devices, which may be the ones just deleted.
	forgets uint64
}

// recentDevice holds unix milliseconds, a third of three time.Time.
type recentDevice struct {
	first, last int64 // the stored seen times
	stored      int64 // when this process stored them
}

const (
	recentDeviceTTL  = time.Minute
	maxRecentDevices = 200_000
)

func newRecentDevices(db *gorm.DB) *recentDevices {
	r := &recentDevices{m: map[DeviceKey]recentDevice{}}
	registerRecentDevices(db, r)
	return r
}

// covers reports whether the stored row of k already says what an event at
// `at` would write, closely enough.
func (r *recentDevices) covers(k DeviceKey, at, now time.Time) bool {
	r.mu.Lock()
	d, ok := r.m[k]
	r.mu.Unlock()
	ttl, t := recentDeviceTTL.Milliseconds(), at.UnixMilli()
	return ok && now.UnixMilli()-d.stored < ttl && t >= d.first && t-d.last < ttl
}

// epoch is to be read before a transaction that upserts devices, and given
// to remember after its commit.
func (r *recentDevices) epoch() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.forgets
}

func (r *recentDevices) remember(devices []*deviceSeen, epoch uint64, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if epoch != r.forgets {
		return
	}
	if len(r.m)+len(devices) > maxRecentDevices {
		clear(r.m)
	}
	ms := now.UnixMilli()
	for _, d := range devices {
		k := DeviceKey{d.appID, d.deviceID}
		first, last := d.first.UnixMilli(), d.last.UnixMilli()
		if prev, ok := r.m[k]; ok && ms-prev.stored < recentDeviceTTL.Milliseconds() {
			first, last = min(first, prev.first), max(last, prev.last)
		}
		r.m[k] = recentDevice{first: first, last: last, stored: ms}
	}
}

func (r *recentDevices) forget(appID uint64, deviceIDs []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.forgets++
	for _, id := range deviceIDs {
		delete(r.m, DeviceKey{appID, id})
	}
}
