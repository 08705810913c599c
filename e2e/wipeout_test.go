//go:build e2e

package e2e

import (
	"context"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

// s3Keys lists the object keys of the suite's bucket under prefix (with a
// trailing slash: the folder, not its siblings), asking MinIO directly.
func s3Keys(t *testing.T, prefix string) []string {
	t.Helper()
	q := url.Values{"list-type": {"2"}, "prefix": {strings.TrimSuffix(prefix, "/") + "/"}}
	out, err := exec.Command("curl", "-fsS", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user", e.s3Key+":"+e.s3Sec,
		e.s3Endpoint+"/stow-e2e?"+q.Encode()).CombinedOutput()
	if err != nil {
		t.Fatalf("listing %s: %v: %s", prefix, err, out)
	}
	if !regexp.MustCompile(`<KeyCount>\d+</KeyCount>`).Match(out) {
		t.Fatalf("listing %s: no KeyCount in %s", prefix, out)
	}
	if strings.Contains(string(out), "<IsTruncated>true</IsTruncated>") {
		t.Fatalf("listing %s: more than one page", prefix)
	}
	var keys []string
	for _, m := range regexp.MustCompile(`<Key>([^<]*)</Key>`).FindAllSubmatch(out, -1) {
		keys = append(keys, string(m[1]))
	}
	return keys
}

// s3Objects counts the repository data under prefix: restic's lock files
// are left out, they come and go with every restic run (a session's forget,
// the Repository's refresh).
func s3Objects(t *testing.T, prefix string) int {
	t.Helper()
	n := 0
	for _, k := range s3Keys(t, prefix) {
		if !strings.Contains(k, "/locks/") {
			n++
		}
	}
	return n
}

// Deleting a Repository with wipeOut: refused while a BackupConfiguration
// uses it (the Repository stays, saying why, its data untouched); once that
// is gone, a Job deletes every object under the Repository's prefix, the
// Repository goes, and a sibling repository next to it (prefix <ns>-sib)
// keeps every object.
func TestWipeOutOnRepositoryDeletion(t *testing.T) {
	t.Parallel()
	e2eShared(t)
	ns := namespace(t)
	c := context.Background()
	pvc(t, ns, "data", corev1.ReadWriteMany)
	runFixture(t, ns, "data", "write", "/data", "1", "10")
	b, data := backend(t, ns, "s3")
	if _, err := e.kube.CoreV1().Secrets(ns).Create(c, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "repo-secret", Namespace: ns}, StringData: data}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	repo := &v1beta1.Repository{ObjectMeta: metav1.ObjectMeta{Name: "repo", Namespace: ns}, Spec: v1beta1.RepositorySpec{Backend: b, WipeOut: true}}
	if _, err := e.stow.StowV1beta1().Repositories(ns).Create(c, repo, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	sib := &v1beta1.Repository{ObjectMeta: metav1.ObjectMeta{Name: "sibling", Namespace: ns}, Spec: v1beta1.RepositorySpec{Backend: repo.Spec.Backend}}
	sib.Spec.Backend.S3 = sib.Spec.Backend.S3.DeepCopy()
	sib.Spec.Backend.S3.Prefix = ns + "-sib"
	if _, err := e.stow.StowV1beta1().Repositories(ns).Create(c, sib, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	createBC(t, backupConfig(ns, "bc", "data", "0 0 1 1 *", 3))
	sibBC := backupConfig(ns, "sib", "data", "0 0 1 1 *", 3)
	sibBC.Spec.Repository.Name = "sibling"
	createBC(t, sibBC)
	for _, name := range []string{"bc", "sib"} {
		waitBCReady(t, ns, name)
		if s := triggerBackup(t, ns, name, 3*time.Minute); s.Status.Phase != v1beta1.BackupSessionSucceeded {
			t.Fatalf("backup %s: %s (%s)", name, s.Status.Phase, s.Status.Reason)
		}
	}
	mine, theirs := s3Objects(t, ns), s3Objects(t, ns+"-sib")
	if mine < 5 || theirs < 5 {
		t.Fatalf("objects before the deletion: %d under %s, %d under %s-sib", mine, ns, theirs, ns)
	}

	if err := e.stow.StowV1beta1().Repositories(ns).Delete(c, "repo", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "wipe refused while BackupConfiguration bc uses the repository", time.Minute, func(c context.Context) (bool, error) {
		r, err := e.stow.StowV1beta1().Repositories(ns).Get(c, "repo", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		cd := v1beta1.GetCondition(r.Status.Conditions, v1beta1.WipeOut)
		return cd != nil && cd.Reason == "Refused" && strings.Contains(cd.Message, "BackupConfiguration "+ns+"/bc"), nil
	})
	if n := s3Objects(t, ns); n != mine {
		t.Fatalf("a refused wipe changed the data: %d objects, were %d", n, mine)
	}

	if err := e.stow.StowV1beta1().BackupConfigurations(ns).Delete(c, "bc", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "Repository wiped and deleted", 3*time.Minute, func(c context.Context) (bool, error) {
		_, err := e.stow.StowV1beta1().Repositories(ns).Get(c, "repo", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if left := s3Keys(t, ns); len(left) != 0 {
		t.Errorf("%d objects left under %s after the wipe: %v", len(left), ns, left)
	}
	if n := s3Objects(t, ns+"-sib"); n != theirs {
		t.Errorf("the sibling repository: %d objects, were %d: %v", n, theirs, s3Keys(t, ns+"-sib"))
	}
	evs, err := e.kube.CoreV1().Events(ns).List(c, metav1.ListOptions{FieldSelector: "involvedObject.name=repo"})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, ev := range evs.Items {
		seen[ev.Reason] = true
	}
	for _, r := range []string{"WipeOutRefused", "WipeOutStarted", "WipedOut"} {
		if !seen[r] {
			t.Errorf("no %s event; events: %v", r, seen)
		}
	}
}
