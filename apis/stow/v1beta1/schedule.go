package v1beta1

import (
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// ResolveSchedule turns the @*-random macros into a cron expression whose
// minute, hour and weekday are derived from namespace/name: stable across
// restarts, spread across configurations. Other schedules are returned as is.
func ResolveSchedule(namespace, name, schedule string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(namespace + "/" + name))
	v := h.Sum32()
	minute, hour, weekday := v%60, (v/60)%24, (v/(60*24))%7
	switch strings.TrimSpace(schedule) {
	case ScheduleHourlyRandom:
		return fmt.Sprintf("%d * * * *", minute)
	case ScheduleDailyRandom:
		return fmt.Sprintf("%d %d * * *", minute, hour)
	case ScheduleWeeklyRandom:
		return fmt.Sprintf("%d %d * * %d", minute, hour, weekday)
	}
	return schedule
}

var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseSchedule checks a (resolved) schedule the way the CronJob controller
// parses it, and returns the schedule so callers can compute next times.
// A schedule that parses but names no existing date ("0 0 31 2 *",
// February 31st) is refused too: cron's Next returns the zero time for it,
// so a configuration would be Ready and never back up, and a maintenance
// task would take zero for "due long ago" and run on every reconcile.
func ParseSchedule(schedule string) (cron.Schedule, error) {
	if strings.Contains(schedule, "TZ=") {
		return nil, fmt.Errorf("schedule %q: set the time zone with spec.timeZone, not TZ=", schedule)
	}
	s, err := cronParser.Parse(schedule)
	if err != nil {
		return nil, fmt.Errorf("schedule %q: %v", schedule, err)
	}
	// cron searches five years ahead: a date that exists (February 29th
	// included) is found, one that does not never is.
	if s.Next(time.Now()).IsZero() {
		return nil, fmt.Errorf("schedule %q never fires: no date matches it (such as February 30th, or the 31st of a month of 30 days)", schedule)
	}
	return s, nil
}

// ScheduleInterval is the time between two consecutive runs after from, used
// by alerts ("no success in twice the interval").
func ScheduleInterval(s cron.Schedule, from time.Time) time.Duration {
	next := s.Next(from)
	return s.Next(next).Sub(next)
}
