using System.Runtime.CompilerServices;
using VddkBuild.Threading;

namespace VddkBuild.Cluster;

/// <summary>
/// PrepareVddkRegistry: puts the cluster's image registry on a NooBaa bucket and exposes it, in the documented order
/// (bucket claim, bucket check, keys, CA bundle, operator config, rollout wait). Every step reads first and writes only
/// what differs, so a second run changes nothing; in a dry run every change is printed and nothing is written.
/// A step that needs the bucket's facts resolves the claim even when the claim step itself was not selected.
/// </summary>
public static class RegistryPreparation
{
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    public static async Task<RegistryPreparationResult> RunAsync(ClusterSession session, RegistryPreparationOptions options, CancellationToken cancellationToken)
    {
        var steps = options.Steps;
        bool Has(RegistryPreparationSteps step) => (steps & step) != 0;
        session.Log.Info($"Preparing the image registry of {session.Server}{(session.DryRun ? " (dry run: nothing is written)" : "")}.");
        // The registry's own config first: on a cluster that is not OpenShift its type is not served, which says so
        // (VDDK4025), where the first step's ObjectBucketClaim would only ask for an operator to be installed.
        await ClusterObjects.GetAsync(session, RegistryConfigStep.Config, cancellationToken).ConfigureAwait(false);

        if (Has(RegistryPreparationSteps.Credentials | RegistryPreparationSteps.RegistryConfig))
        {
            // Refuse before the first write what step 5 would refuse after the keys were already swapped.
            var planned = await BucketClaimStep.PlannedBucketNameAsync(session, options.Bucket, cancellationToken).ConfigureAwait(false);
            await RegistryConfigStep.CheckSwitchAllowedAsync(session, planned, options.Config, cancellationToken).ConfigureAwait(false);
        }

        BucketFacts? bucket = null;
        if (Has(RegistryPreparationSteps.BucketClaim | RegistryPreparationSteps.VerifyBucket | RegistryPreparationSteps.Credentials | RegistryPreparationSteps.RegistryConfig))
        {
            bucket = await BucketClaimStep.RunAsync(session, options.Bucket, cancellationToken).ConfigureAwait(false);
        }

        IngressCa? ca = null;
        if (Has(RegistryPreparationSteps.VerifyBucket))
        {
            // The bucket is checked the way the registry will reach it: through the S3 route, trusting the ingress CA.
            ca = await IngressCaStep.ReadAsync(session, cancellationToken).ConfigureAwait(false);
            await BucketVerifier.VerifyAsync(bucket!, ca.Certificates, session.Log, cancellationToken).ConfigureAwait(false);
        }
        if (Has(RegistryPreparationSteps.Credentials))
        {
            await RegistryCredentialsStep.RunAsync(session, bucket!.Credentials, cancellationToken).ConfigureAwait(false);
        }
        if (Has(RegistryPreparationSteps.CaBundle))
        {
            ca = await IngressCaStep.RunAsync(session, cancellationToken).ConfigureAwait(false);
        }
        var configChanged = false;
        if (Has(RegistryPreparationSteps.RegistryConfig))
        {
            configChanged = await RegistryConfigStep.RunAsync(session, bucket!, IngressCaStep.ConfigMapName, options.Config, cancellationToken).ConfigureAwait(false);
        }
        if (Has(RegistryPreparationSteps.WaitForRollout))
        {
            await RegistryRolloutWaiter.WaitAsync(session, options.RolloutTimeout, cancellationToken).ConfigureAwait(false);
        }

        var changes = session.Changes.Changes;
        session.Log.Info(changes.Count == 0
            ? "The image registry was already prepared: nothing changed."
            : session.DryRun
                ? $"Dry run: {changes.Count} change(s) planned above; nothing was written."
                : $"The image registry is prepared ({changes.Count} change(s) applied).");
        return new RegistryPreparationResult(bucket, ca, configChanged, changes);
    }
}
