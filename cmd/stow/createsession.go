package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/client/clientset/versioned"
	"github.com/stowhq/stow/pkg/trigger"
)

var createBackupSessionCommand = command{
	name:  "create-backupsession",
	short: "create a BackupSession for a BackupConfiguration (trigger CronJob)",
	long: `Creates a BackupSession for the BackupConfiguration --invoker-name in
--namespace, using the in-cluster configuration (or --kubeconfig). The session
is named <bc>-<unix time>, labelled like every session of the configuration,
owned by it, and gets retryLeft = the configuration's maxRetry.`,
	flags: func(fs *pflag.FlagSet) func(context.Context, []string) error {
		var namespace, invokerName, invokerKind, kubeconfig string
		fs.StringVar(&namespace, "namespace", "", "namespace of the BackupConfiguration")
		fs.StringVar(&invokerName, "invoker-name", "", "BackupConfiguration name")
		fs.StringVar(&invokerKind, "invoker-kind", v1beta1.KindBackupConfiguration, "invoker kind (only BackupConfiguration)")
		fs.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file (default: in-cluster configuration)")
		return noArgs(func(ctx context.Context) error {
			if namespace == "" || invokerName == "" {
				return usageError("--namespace and --invoker-name are required")
			}
			if invokerKind != v1beta1.KindBackupConfiguration {
				return usageError("--invoker-kind %q: only %s is supported", invokerKind, v1beta1.KindBackupConfiguration)
			}
			cfg, err := restConfig(kubeconfig)
			if err != nil {
				return err
			}
			cs, err := versioned.NewForConfig(cfg)
			if err != nil {
				return err
			}
			bs, err := createBackupSession(ctx, cs, namespace, invokerName, time.Now())
			if err != nil {
				return err
			}
			logger.Printf("created BackupSession %s/%s", bs.Namespace, bs.Name)
			return nil
		})
	},
}

func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		return clientcmd.BuildConfigFromFlags("", kubeconfig)
	}
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("in-cluster configuration: %v (outside a pod, pass --kubeconfig)", err)
	}
	return cfg, nil
}

// createBackupSession creates the session of bc in namespace for time now.
func createBackupSession(ctx context.Context, cs versioned.Interface, namespace, bcName string, now time.Time) (*v1beta1.BackupSession, error) {
	return trigger.Create(ctx, cs, namespace, bcName, now)
}
