package metrics

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

const monitoringDir = "../../deploy/monitoring"

// operatorFamilies are the operator's own metric names (histograms by base name).
var operatorFamilies = []string{
	"stow_backupsessions", "stow_restoresessions", "stow_reconcile_duration_seconds", "stow_reconcile_errors_total",
	"workqueue_depth", "workqueue_adds_total", "workqueue_queue_duration_seconds", "workqueue_work_duration_seconds",
	"workqueue_unfinished_work_seconds", "workqueue_longest_running_processor_seconds", "workqueue_retries_total",
}

var metricRef = regexp.MustCompile(`\b(?:stash|stow|workqueue)_[a-z_]+`)

// checkExpr requires an expression to be balanced and to use only metric
// names Stow exposes; it returns the names used.
func checkExpr(t *testing.T, where, expr string) []string {
	t.Helper()
	known := map[string]bool{}
	for _, n := range append(PushedFamilies(), operatorFamilies...) {
		known[n] = true
	}
	depth := map[rune]int{}
	for _, r := range expr {
		switch r {
		case '(', '{', '[':
			depth[r]++
		case ')':
			depth['(']--
		case '}':
			depth['{']--
		case ']':
			depth['[']--
		}
	}
	for r, d := range depth {
		if d != 0 {
			t.Errorf("%s: unbalanced %q in %q", where, r, expr)
		}
	}
	names := metricRef.FindAllString(expr, -1)
	if len(names) == 0 {
		t.Errorf("%s: expression %q uses no Stow metric", where, expr)
	}
	for _, n := range names {
		base := n
		for _, suffix := range []string{"_bucket", "_count", "_sum"} {
			if !known[base] {
				base = strings.TrimSuffix(base, suffix)
			}
		}
		if !known[base] {
			t.Errorf("%s: unknown metric %s in %q", where, n, expr)
		}
	}
	return names
}

func readYAML(t *testing.T, name string, into any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(monitoringDir, name))
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	if err := yaml.UnmarshalStrict(b, into); err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
}

func TestServiceMonitor(t *testing.T) {
	var sm struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name      string            `json:"name"`
			Namespace string            `json:"namespace"`
			Labels    map[string]string `json:"labels"`
		} `json:"metadata"`
		Spec struct {
			Selector struct {
				MatchLabels map[string]string `json:"matchLabels"`
			} `json:"selector"`
			NamespaceSelector struct {
				MatchNames []string `json:"matchNames"`
			} `json:"namespaceSelector"`
			Endpoints []struct {
				Port        string `json:"port"`
				Path        string `json:"path"`
				Interval    string `json:"interval"`
				HonorLabels bool   `json:"honorLabels"`
			} `json:"endpoints"`
		} `json:"spec"`
	}
	readYAML(t, "servicemonitor.yaml", &sm)
	if sm.APIVersion != "monitoring.coreos.com/v1" || sm.Kind != "ServiceMonitor" {
		t.Fatalf("servicemonitor.yaml is %s %s", sm.APIVersion, sm.Kind)
	}
	if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "pushgateway" || !sm.Spec.Endpoints[0].HonorLabels || sm.Spec.Endpoints[0].Path != "/metrics" {
		t.Errorf("endpoints = %+v, want one on port pushgateway, /metrics, honorLabels", sm.Spec.Endpoints)
	}

	// The selector must match the operator Service, which must have the port.
	var svc struct {
		Metadata struct {
			Namespace string            `json:"namespace"`
			Labels    map[string]string `json:"labels"`
		} `json:"metadata"`
		Spec struct {
			Ports []struct {
				Name string `json:"name"`
				Port int    `json:"port"`
			} `json:"ports"`
		} `json:"spec"`
	}
	b, err := os.ReadFile("../../deploy/service.yaml")
	if os.IsNotExist(err) {
		t.Skip("deploy/service.yaml not there yet")
	}
	if err != nil || yaml.Unmarshal(b, &svc) != nil {
		t.Fatalf("read deploy/service.yaml: %v", err)
	}
	for k, v := range sm.Spec.Selector.MatchLabels {
		if svc.Metadata.Labels[k] != v {
			t.Errorf("ServiceMonitor selects %s=%s, the Service has %q", k, v, svc.Metadata.Labels[k])
		}
	}
	if len(sm.Spec.NamespaceSelector.MatchNames) != 1 || sm.Spec.NamespaceSelector.MatchNames[0] != svc.Metadata.Namespace {
		t.Errorf("namespaceSelector %v, Service namespace %s", sm.Spec.NamespaceSelector.MatchNames, svc.Metadata.Namespace)
	}
	found := false
	for _, p := range svc.Spec.Ports {
		found = found || (p.Name == "pushgateway" && p.Port == 56789)
	}
	if !found {
		t.Errorf("deploy/service.yaml has no port pushgateway: 56789: %+v", svc.Spec.Ports)
	}
}

// alertRule is one rule of deploy/monitoring/prometheusrule.yaml.
type alertRule struct {
	Alert       string            `json:"alert"`
	Expr        string            `json:"expr"`
	For         string            `json:"for"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

type prometheusRule struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace"`
		Labels    map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		Groups []struct {
			Name  string      `json:"name"`
			Rules []alertRule `json:"rules"`
		} `json:"groups"`
	} `json:"spec"`
}

// shippedAlerts are the rules of deploy/monitoring/prometheusrule.yaml.
func shippedAlerts(t *testing.T) []alertRule {
	var pr prometheusRule
	readYAML(t, "prometheusrule.yaml", &pr)
	var out []alertRule
	for _, g := range pr.Spec.Groups {
		out = append(out, g.Rules...)
	}
	return out
}

func TestPrometheusRule(t *testing.T) {
	var pr prometheusRule
	readYAML(t, "prometheusrule.yaml", &pr)
	if pr.APIVersion != "monitoring.coreos.com/v1" || pr.Kind != "PrometheusRule" {
		t.Fatalf("prometheusrule.yaml is %s %s", pr.APIVersion, pr.Kind)
	}
	exprs := map[string]string{}
	for _, g := range pr.Spec.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("rule %+v needs alert, severity and summary", r)
			}
			if _, dup := exprs[r.Alert]; dup {
				t.Errorf("duplicate alert %s", r.Alert)
			}
			checkExpr(t, r.Alert, r.Expr)
			exprs[r.Alert] = strings.Join(strings.Fields(r.Expr), " ")
		}
	}
	// The alerts the design asks for.
	want := map[string][]string{
		"StowBackupSessionFailed":       {"stash_backup_session_success == 0"},
		"StowBackupNoRecentSuccess":     {"time() - stash_backup_last_success_time_seconds", "2 *", "stash_backup_schedule_interval_seconds"},
		"StowBackupSessionSkipped":      {"stash_backup_session_skipped == 1"},
		"StowRepositoryIntegrityFailed": {"stash_repository_integrity == 0"},
		"StowRepositoryIntegrityStale":  {"stash_repository_integrity_last_check_time_seconds"},
	}
	for alert, parts := range want {
		expr, ok := exprs[alert]
		if !ok {
			t.Errorf("alert %s missing", alert)
			continue
		}
		for _, p := range parts {
			if !strings.Contains(expr, p) {
				t.Errorf("alert %s: expr %q lacks %q", alert, expr, p)
			}
		}
	}
}

func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(monitoringDir, "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			ID      int    `json:"id"`
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("parse grafana-dashboard.json: %v", err)
	}
	if d.Title == "" || d.UID == "" {
		t.Errorf("dashboard needs a title and uid")
	}
	used := map[string]bool{}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("duplicate panel id %d", p.ID)
		}
		ids[p.ID] = true
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			for _, n := range checkExpr(t, "panel "+p.Title, tg.Expr) {
				used[n] = true
			}
		}
	}
	for _, n := range []string{
		BackupSessionSuccess, BackupSessionDuration, BackupLastSuccessTime, BackupHostDataSize, BackupHostDataUploaded,
		BackupHostFilesTotal, RepositorySize, RepositorySnapshotCount, BackupSessionSkipped,
	} {
		if !used[n] {
			t.Errorf("dashboard does not show %s", n)
		}
	}
}

func TestMonitoringKustomization(t *testing.T) {
	var k struct {
		APIVersion string   `json:"apiVersion"`
		Kind       string   `json:"kind"`
		Resources  []string `json:"resources"`
	}
	readYAML(t, "kustomization.yaml", &k)
	if len(k.Resources) == 0 {
		t.Fatal("no resources")
	}
	for _, r := range k.Resources {
		if _, err := os.Stat(filepath.Join(monitoringDir, r)); err != nil {
			t.Errorf("resource %s: %v", r, err)
		}
	}
}
