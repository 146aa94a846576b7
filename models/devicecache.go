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

type recentDevice struct {
	first, last time.Time // the stored seen times
	stored      time.Time // when this process stored them
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
	return ok && now.Sub(d.stored) < recentDeviceTTL && !at.Before(d.first) && at.Sub(d.last) < recentDeviceTTL
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
	for _, d := range devices {
		k := DeviceKey{d.appID, d.deviceID}
		prev, ok := r.m[k]
		if ok && now.Sub(prev.stored) < recentDeviceTTL {
			d.first, d.last = minTime(d.first, prev.first), maxTime(d.last, prev.last)
		}
		r.m[k] = recentDevice{first: d.first, last: d.last, stored: now}
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
