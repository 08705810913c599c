package main

import (
	"context"
	"fmt"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/names"
)

var describeCommand = command{
	name:  "describe",
	args:  "BACKUPCONFIGURATION",
	short: "a configuration's state, conditions and recent sessions with their reasons",
	flags: func(fs *pflag.FlagSet) func(context.Context, *env, []string) error {
		sessions := fs.Int("sessions", 10, "how many recent sessions to show")
		return func(ctx context.Context, e *env, args []string) error {
			name, err := oneArg(args, "BackupConfiguration name")
			if err != nil {
				return err
			}
			if *sessions < 0 {
				return usagef("--sessions must be 0 or more, not %d", *sessions)
			}
			bc, err := e.stow.StowV1beta1().BackupConfigurations(e.namespace).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return fmt.Errorf("backupconfiguration %s: %v", name, err)
			}
			now := e.now()
			tw := tabwriter.NewWriter(e.out, 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "Name:\t%s/%s\n", bc.Namespace, bc.Name)
			if t := bc.Spec.Target; t != nil {
				fmt.Fprintf(tw, "Target:\tPVC %s\n", t.Ref.Name)
			}
			fmt.Fprintf(tw, "Repository:\t%s\n", bc.Spec.Repository.Name)
			fmt.Fprintf(tw, "Schedule:\t%s\n", dash(bc.Status.Schedule))
			fmt.Fprintf(tw, "Paused:\t%t\n", bc.Spec.Paused)
			fmt.Fprintf(tw, "Phase:\t%s\n", dash(string(bc.Status.Phase)))
			last := "never"
			if t := bc.Status.LastSuccessTime; t != nil {
				last = fmt.Sprintf("%s (%s ago)", t.UTC().Format(time.RFC3339), age(now, t.Time))
			}
			fmt.Fprintf(tw, "Last success:\t%s\n", last)
			if n := bc.Status.SnapshotCount; n != nil {
				fmt.Fprintf(tw, "Snapshots:\t%d\n", *n)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if len(bc.Status.Conditions) > 0 {
				fmt.Fprintln(e.out, "\nConditions:")
				tw = tabwriter.NewWriter(e.out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "  TYPE\tSTATUS\tREASON\tMESSAGE")
				for _, c := range bc.Status.Conditions {
					fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", c.Type, c.Status, dash(c.Reason), oneLine(c.Message))
				}
				if err := tw.Flush(); err != nil {
					return err
				}
			}
			sel := labels.Set{
				v1beta1.LabelInvokerType: v1beta1.KindBackupConfiguration,
				v1beta1.LabelInvokerName: names.LabelValue(bc.Name),
			}.AsSelector().String()
			list, err := e.stow.StowV1beta1().BackupSessions(e.namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
			if err != nil {
				return fmt.Errorf("list sessions of %s: %v", name, err)
			}
			items := list.Items[:0]
			for _, s := range list.Items {
				if s.Spec.Invoker.Name == bc.Name {
					items = append(items, s)
				}
			}
			sort.SliceStable(items, func(i, j int) bool {
				return items[i].CreationTimestamp.After(items[j].CreationTimestamp.Time)
			})
			if len(items) > *sessions {
				items = items[:*sessions]
			}
			fmt.Fprintf(e.out, "\nRecent sessions (%d):\n", len(items))
			if len(items) == 0 {
				fmt.Fprintln(e.out, "  none")
				return nil
			}
			tw = tabwriter.NewWriter(e.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "  NAME\tPHASE\tDURATION\tAGE\tREASON")
			for _, s := range items {
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", s.Name, dash(string(s.Status.Phase)), dash(s.Status.SessionDuration),
					age(now, s.CreationTimestamp.Time), dash(oneLine(s.Status.Reason)))
			}
			return tw.Flush()
		}
	},
}

func age(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return duration.HumanDuration(now.Sub(t))
}
