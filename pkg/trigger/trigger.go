// Package trigger creates the BackupSession that starts one backup of a
// BackupConfiguration now. The trigger CronJob (stow create-backupsession)
// and `kubectl stow trigger` both create it here, so a session triggered by
// hand is indistinguishable from a scheduled one.
package trigger

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/client/clientset/versioned"
	"github.com/stowhq/stow/pkg/names"
)

// BackupSession is the session of bc for time now: named <bc>-<unix time>,
// labelled like every session of the configuration, owned by it, with
// retryLeft = the configuration's maxRetry.
func BackupSession(bc *v1beta1.BackupConfiguration, now time.Time) *v1beta1.BackupSession {
	return &v1beta1.BackupSession{
		ObjectMeta: metav1.ObjectMeta{
			Name:            names.BackupSession(bc.Name, now.Unix()),
			Namespace:       bc.Namespace,
			Labels:          names.SessionLabels(bc),
			OwnerReferences: []metav1.OwnerReference{v1beta1.OwnerRef(v1beta1.KindBackupConfiguration, bc.Name, bc.UID)},
		},
		Spec: v1beta1.BackupSessionSpec{
			Invoker: v1beta1.BackupInvokerRef{
				APIGroup: v1beta1.SchemeGroupVersion.Group,
				Kind:     v1beta1.KindBackupConfiguration,
				Name:     bc.Name,
			},
			RetryLeft: bc.MaxRetry(),
		},
	}
}

// Create reads BackupConfiguration namespace/name and creates its session
// for time now.
func Create(ctx context.Context, cs versioned.Interface, namespace, name string, now time.Time) (*v1beta1.BackupSession, error) {
	bc, err := cs.StowV1beta1().BackupConfigurations(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("reading BackupConfiguration %s/%s: %v", namespace, name, err)
	}
	bs := BackupSession(bc, now)
	created, err := cs.StowV1beta1().BackupSessions(namespace).Create(ctx, bs, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("creating BackupSession %s/%s: %w", namespace, bs.Name, err)
	}
	return created, nil
}
