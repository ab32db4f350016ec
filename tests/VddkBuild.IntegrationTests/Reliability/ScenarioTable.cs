using VddkBuild.TestSupport.Faults;
using Xunit.Abstractions;

namespace VddkBuild.IntegrationTests.Reliability;

/// <summary>
/// One row of the README's reliability table, written from a real run: to the test output, and appended to the
/// file named by <c>VDDK_RELIABILITY_TABLE</c> when that is set (how the README table was produced).
/// </summary>
internal static class ScenarioTable
{
    private static readonly object Gate = new();

    public static void Report(ITestOutputHelper output, string scenario, IReadOnlyList<InjectedFault> injected, BuildRun faulted, StoredTagState after, BuildRun rerun, bool headsChecked)
    {
        var outcome = faulted.Succeeded
            ? $"completed after {faulted.Retries} retr{(faulted.Retries == 1 ? "y" : "ies")} ({faulted.Elapsed.TotalSeconds:0.0} s)"
            : $"failed with {string.Join(", ", faulted.ErrorCodes)} after {faulted.Retries} retries ({faulted.Elapsed.TotalSeconds:0.0} s)";
        var tag = !after.Exists ? "absent" : after.IsConsistent ? (headsChecked ? "complete (storage, HEADs, skopeo)" : "complete (storage, skopeo)") : "BROKEN";
        var again = rerun.Succeeded ? (rerun.Digest == faulted.Digest || faulted.Digest is null ? "completes, same digest" : "completes, DIFFERENT digest") : "FAILS";
        var row = $"| {scenario} | {injected.Count} | {outcome} | {tag} | {again} |";
        output.WriteLine(row);
        var file = Environment.GetEnvironmentVariable("VDDK_RELIABILITY_TABLE");
        if (!string.IsNullOrEmpty(file))
        {
            lock (Gate)
            {
                File.AppendAllText(file, row + Environment.NewLine);
            }
        }
    }
}
