//go:build e2e

package e2e

// Issue 13 items 5: the API server rejects what the operator could not read,
// and an object that slipped through anyway (an older or loosened CRD)
// fails alone, named, while every other object is reconciled.

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensions "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/lenient"
)

// createRaw sends doc as is (no Go type in between, so any value reaches
// the API server) to POST .../namespaces/ns/plural.
func createRaw(ctx context.Context, ns, plural string, doc []byte, dryRun bool) error {
	req := e.stow.StowV1beta1().RESTClient().Post().Namespace(ns).Resource(plural).
		SetHeader("Content-Type", "application/json").Body(doc)
	if dryRun {
		req = req.Param("dryRun", "All")
	}
	return req.Do(ctx).Error()
}

// setPath puts value at the dotted path of the JSON object doc.
func setPath(t *testing.T, doc []byte, path string, value json.RawMessage) []byte {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(doc))
	d.UseNumber()
	var m map[string]interface{}
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	cur := m
	parts := strings.Split(path, ".")
	for _, p := range parts[:len(parts)-1] {
		next, ok := cur[p].(map[string]interface{})
		if !ok {
			next = map[string]interface{}{}
			cur[p] = next
		}
		cur = next
	}
	cur[parts[len(parts)-1]] = value
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSchemaRejectsMalformedFieldsOnAPIServer sends every malformed value of
// apis/stow/v1beta1/testdata/malformed.json (the unit test's table) to the
// real API server (dry run) and expects each to be refused as Invalid,
// naming the field; the valid bases are admitted.
func TestSchemaRejectsMalformedFieldsOnAPIServer(t *testing.T) {
	t.Parallel()
	e2eShared(t)
	ns := namespace(t)
	c := ctx(t)
	raw, err := os.ReadFile("../apis/stow/v1beta1/testdata/malformed.json")
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Bases map[string]json.RawMessage `json:"bases"`
		Cases []struct {
			Plural string            `json:"plural"`
			Path   string            `json:"path"`
			Values []json.RawMessage `json:"values"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	for plural, b := range m.Bases {
		if err := createRaw(c, ns, plural, b, true); err != nil {
			t.Fatalf("valid %s refused: %v", plural, err)
		}
	}
	n := 0
	for _, tc := range m.Cases {
		for _, v := range tc.Values {
			n++
			err := createRaw(c, ns, tc.Plural, setPath(t, m.Bases[tc.Plural], tc.Path, v), true)
			switch {
			case err == nil:
				t.Errorf("%s %s=%s: admitted", tc.Plural, tc.Path, v)
			case !apierrors.IsInvalid(err) && !apierrors.IsBadRequest(err):
				t.Errorf("%s %s=%s: want Invalid, got %v", tc.Plural, tc.Path, v, err)
			case !strings.Contains(err.Error(), tc.Path):
				t.Errorf("%s %s=%s: the rejection does not name the field: %v", tc.Plural, tc.Path, v, err)
			}
		}
	}
	t.Logf("%d malformed values refused", n)
}

// loosenCRD replaces the schema of one property of a Stow CRD (as an older
// Stow CRD had it) and returns a func restoring the original.
func loosenCRD(t *testing.T, ext apiextensions.Interface, crdName string, path []string, loose apiextensionsv1.JSONSchemaProps) func() {
	t.Helper()
	c := context.Background()
	orig, err := ext.ApiextensionsV1().CustomResourceDefinitions().Get(c, crdName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var set func(p *apiextensionsv1.JSONSchemaProps, path []string)
	set = func(p *apiextensionsv1.JSONSchemaProps, path []string) {
		child, ok := p.Properties[path[0]]
		if !ok {
			t.Fatalf("%s: no property %s", crdName, path[0])
		}
		if len(path) == 1 {
			child = loose
		} else {
			set(&child, path[1:])
		}
		p.Properties[path[0]] = child
	}
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := ext.ApiextensionsV1().CustomResourceDefinitions().Get(c, crdName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		set(cur.Spec.Versions[0].Schema.OpenAPIV3Schema, path)
		_, err = ext.ApiextensionsV1().CustomResourceDefinitions().Update(c, cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("loosen %s: %v", crdName, err)
	}
	restored := false
	restore := func() {
		if restored {
			return
		}
		restored = true
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			cur, err := ext.ApiextensionsV1().CustomResourceDefinitions().Get(c, crdName, metav1.GetOptions{})
			if err != nil {
				return err
			}
			cur.Spec = orig.Spec
			_, err = ext.ApiextensionsV1().CustomResourceDefinitions().Update(c, cur, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			t.Errorf("restore CRD %s: %v (the cluster keeps a loosened CRD; re-apply deploy/crds)", crdName, err)
		}
	}
	t.Cleanup(restore)
	return restore
}

// createWhenAdmitted creates doc, retrying while the API server still
// applies the old schema (a CRD update takes effect asynchronously).
func createWhenAdmitted(t *testing.T, ns, plural string, doc []byte) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(ctx(t), time.Second, time.Minute, true, func(c context.Context) (bool, error) {
		last = createRaw(c, ns, plural, doc, false)
		return last == nil, nil
	})
	if err != nil {
		t.Fatalf("%s not admitted by the loosened CRD: %v (last: %v)", plural, err, last)
	}
}

// TestUnreadableObjectsDoNotStopOthers: with the CRDs loosened for a moment
// (as an older Stow had them), a BackupSession with retryLeft 99999999999
// (no int32), a RestoreSession with timeOut "1 hour" and a
// BackupConfiguration with retryConfig.delay "soon" are stored; the strict
// CRDs come back. Before issue 13 the operator's informers then failed to
// list and no backup or restore ran anywhere, also after a restart. Now,
// after an operator restart (the informers list from scratch), a good
// backup and a good restore in the same namespace succeed, and each bad
// object shows Invalid (a failed session) with a reason and an Event naming
// its field.
func TestUnreadableObjectsDoNotStopOthers(t *testing.T) {
	e2eExclusive(t) // changes the CRDs and restarts the operator
	ns := namespace(t)
	c := ctx(t)
	ext, err := apiextensions.NewForConfig(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	dataSetup(t, ns, "s3", 0, nil)

	restoreBS := loosenCRD(t, ext, "backupsessions.stow.dev", []string{"spec", "retryLeft"}, apiextensionsv1.JSONSchemaProps{Type: "integer"})
	restoreRS := loosenCRD(t, ext, "restoresessions.stow.dev", []string{"spec", "timeOut"}, apiextensionsv1.JSONSchemaProps{Type: "string"})
	restoreBC := loosenCRD(t, ext, "backupconfigurations.stow.dev", []string{"spec", "retryConfig", "delay"}, apiextensionsv1.JSONSchemaProps{Type: "string"})
	createWhenAdmitted(t, ns, "backupsessions", []byte(`{"apiVersion":"stow.dev/v1beta1","kind":"BackupSession",
		"metadata":{"name":"bad-retryleft"},"spec":{"invoker":{"kind":"BackupConfiguration","name":"bc"},"retryLeft":99999999999}}`))
	createWhenAdmitted(t, ns, "restoresessions", []byte(`{"apiVersion":"stow.dev/v1beta1","kind":"RestoreSession",
		"metadata":{"name":"bad-timeout"},"spec":{"repository":{"name":"repo"},"target":{"ref":{"name":"data"}},"timeOut":"1 hour"}}`))
	createWhenAdmitted(t, ns, "backupconfigurations", []byte(`{"apiVersion":"stow.dev/v1beta1","kind":"BackupConfiguration",
		"metadata":{"name":"bad-delay"},"spec":{"schedule":"0 0 1 1 *","repository":{"name":"repo"},"target":{"ref":{"name":"data"}},
		"retentionPolicy":{"name":"keep","keepLast":1,"prune":true},"retryConfig":{"maxRetry":1,"delay":"soon"}}}`))
	restoreBS()
	restoreRS()
	restoreBC()

	// The informers list everything again, bad objects included.
	killOperator(t)

	// Everybody else is served: a backup, then a restore of it.
	s := waitSessionFinal(t, ns, startSession(t, ns, "bc"), 5*time.Minute)
	if s.Status.Phase != v1beta1.BackupSessionSucceeded {
		t.Fatalf("good backup %s: %s (%s)", s.Name, s.Status.Phase, s.Status.Reason)
	}
	if err := startRestore(t, ns, "good-restore", nil); err != nil {
		t.Fatal(err)
	}
	if rs := waitRestore(t, ns, "good-restore", 5*time.Minute); rs.Status.Phase != v1beta1.RestoreSucceeded {
		t.Fatalf("good restore: %s (%s)", rs.Status.Phase, rs.Status.Reason)
	}

	// Each bad object fails alone, naming its field.
	// The plain clientset cannot decode it (that is the point): read it
	// as the operator does.
	lc, err := lenient.NewClientset(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	var bs *v1beta1.BackupSession
	waitFor(t, "bad-retryleft final", 2*time.Minute, func(c context.Context) (bool, error) {
		got, err := lc.StowV1beta1().BackupSessions(ns).Get(c, "bad-retryleft", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		bs = got
		return got.Status.Phase.IsFinal(), nil
	})
	if bs.Status.Phase != v1beta1.BackupSessionFailed || !strings.Contains(bs.Status.Reason, "spec.retryLeft") {
		t.Errorf("bad-retryleft: %s %q; want Failed naming spec.retryLeft", bs.Status.Phase, bs.Status.Reason)
	}
	if msg := waitEvent(t, ns, v1beta1.KindBackupSession, "bad-retryleft", corev1.EventTypeWarning, "InvalidBackupSession"); !strings.Contains(msg, "spec.retryLeft") {
		t.Errorf("bad-retryleft Event: %s", msg)
	}
	// The API server checks the schema's CEL rules on status writes too, so
	// a session stored under the looser schema may not even take a status:
	// the Event names it; a status, when written, says Invalid.
	if msg := waitEvent(t, ns, v1beta1.KindRestoreSession, "bad-timeout", corev1.EventTypeWarning, "InvalidRestoreSession"); !strings.Contains(msg, "spec.timeOut") {
		t.Errorf("bad-timeout Event: %s", msg)
	}
	if rs, err := e.stow.StowV1beta1().RestoreSessions(ns).Get(c, "bad-timeout", metav1.GetOptions{}); err == nil && rs.Status.Phase != "" &&
		(rs.Status.Phase != v1beta1.RestoreInvalid || !strings.Contains(rs.Status.Reason, "spec.timeOut")) {
		t.Errorf("bad-timeout: %s %q; want Invalid naming spec.timeOut", rs.Status.Phase, rs.Status.Reason)
	}
	cond := waitBCCondition(t, ns, "bad-delay", v1beta1.ValidationPassed, v1beta1.ConditionFalse, v1beta1.ResourceValidationFailed, v1beta1.BackupInvokerInvalid)
	if !strings.Contains(cond.Message, "spec.retryConfig.delay") || !strings.Contains(cond.Message, "soon") {
		t.Errorf("bad-delay ValidationPassed: %s", cond.Message)
	}
	// No Job ran for the bad objects.
	jobs, err := e.kube.BatchV1().Jobs(ns).List(c, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range jobs.Items {
		if strings.Contains(j.Name, "bad-") {
			t.Errorf("Job %s ran for a bad object", j.Name)
		}
	}
	// Each can be deleted: none holds a finalizer that today's schema would
	// keep the operator from removing, so the namespace can go too.
	bad := []struct{ plural, name string }{{"backupsessions", "bad-retryleft"}, {"restoresessions", "bad-timeout"}, {"backupconfigurations", "bad-delay"}}
	for _, o := range bad {
		if err := e.stow.StowV1beta1().RESTClient().Delete().Namespace(ns).Resource(o.plural).Name(o.name).Do(c).Error(); err != nil && !apierrors.IsNotFound(err) {
			t.Fatalf("delete %s %s: %v", o.plural, o.name, err)
		}
	}
	for _, o := range bad {
		waitFor(t, o.plural+" "+o.name+" deleted", 2*time.Minute, func(c context.Context) (bool, error) {
			err := e.stow.StowV1beta1().RESTClient().Get().Namespace(ns).Resource(o.plural).Name(o.name).Do(c).Error()
			return apierrors.IsNotFound(err), nil
		})
	}
}
