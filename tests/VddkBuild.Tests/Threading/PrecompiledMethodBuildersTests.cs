using System.Reflection;
using System.Runtime.CompilerServices;
using VddkBuild.Oci;
using VddkBuild.Threading;

namespace VddkBuild.Tests.Threading;

public sealed class PrecompiledMethodBuildersTests
{
    private static readonly AsyncLocal<string?> Ambient = new();

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    private static async Task<int> AddAsync(Task<int> left, int right) => await left.ConfigureAwait(false) + right;

    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder<>))]
    private static async ValueTask<int> AddValueAsync(Task<int> left, int right) => await left.ConfigureAwait(false) + right;

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder))]
    private static async Task AwaitThenThrowAsync(Task gate, Exception exception)
    {
        await gate.ConfigureAwait(false);
        throw exception;
    }

    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder))]
    private static async ValueTask ThrowValueAsync(Task gate, Exception exception)
    {
        await gate.ConfigureAwait(false);
        throw exception;
    }

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    private static async Task<string?> AmbientAfterAsync(Task gate)
    {
        await gate.ConfigureAwait(false);
        return Ambient.Value;
    }

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder))]
    private static async Task ChangeAmbientThenAwaitAsync(Task gate)
    {
        Ambient.Value = "inside";
        SynchronizationContext.SetSynchronizationContext(new SynchronizationContext());
        await gate.ConfigureAwait(false);
    }

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    private static async Task<long> SumWithYieldsAsync(int count)
    {
        long sum = 0;
        for (var i = 1; i <= count; i++)
        {
            await Task.Yield();
            sum += i;
        }
        return sum;
    }

    /// <summary>Completes <paramref name="source"/> from a thread that carries no execution context of the test.</summary>
    private static void CompleteFromBareThread(TaskCompletionSource source)
    {
        Thread thread;
        using (ExecutionContext.SuppressFlow())
        {
            thread = new Thread(() =>
            {
                Ambient.Value = "completing thread";
                source.SetResult();
            });
            thread.Start();
        }
        thread.Join();
    }

    [Fact]
    public async Task A_method_that_finishes_without_waiting_returns_a_completed_task_with_its_result()
    {
        var task = AddAsync(Task.FromResult(40), 2);
        var value = AddValueAsync(Task.FromResult(1), 2);

        Assert.True(task.IsCompletedSuccessfully);
        Assert.Equal(42, await task);
        Assert.True(value.IsCompletedSuccessfully);
        Assert.Equal(3, await value);
    }

    [Fact]
    public async Task A_method_that_waits_completes_its_task_when_what_it_awaited_completes()
    {
        var left = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        var task = AddAsync(left.Task, 2);
        var value = AddValueAsync(left.Task, 3);
        Assert.False(task.IsCompleted);
        Assert.False(value.IsCompleted);

        left.SetResult(40);

        Assert.Equal(42, await task);
        Assert.Equal(43, await value);
    }

    [Fact]
    public async Task Locals_survive_many_resumptions_on_other_threads()
    {
        Assert.Equal(500L * 501 / 2, await SumWithYieldsAsync(500));
    }

    [Fact]
    public async Task An_exception_is_carried_by_the_task_and_not_thrown_at_the_call()
    {
        var failure = new InvalidDataException("bad");

        var before = AwaitThenThrowAsync(Task.CompletedTask, failure);
        var gate = new TaskCompletionSource();
        var after = AwaitThenThrowAsync(gate.Task, failure);
        var value = ThrowValueAsync(Task.CompletedTask, failure);
        gate.SetResult();

        Assert.True(before.IsFaulted);
        Assert.Same(failure, await Assert.ThrowsAsync<InvalidDataException>(() => before));
        Assert.Same(failure, await Assert.ThrowsAsync<InvalidDataException>(() => after));
        Assert.Same(failure, await Assert.ThrowsAsync<InvalidDataException>(async () => await value));
    }

    [Fact]
    public async Task A_cancellation_reaches_the_awaiter_as_the_exception_that_was_thrown()
    {
        using var cancellation = new CancellationTokenSource();
        cancellation.Cancel();
        var canceled = new OperationCanceledException("stopped", new TimeoutException("inner"), cancellation.Token);
        var gate = new TaskCompletionSource();
        var task = AwaitThenThrowAsync(gate.Task, canceled);
        gate.SetResult();

        var thrown = await Assert.ThrowsAsync<OperationCanceledException>(() => task);

        Assert.Same(canceled, thrown);
        Assert.IsType<TimeoutException>(thrown.InnerException);
        Assert.Equal(cancellation.Token, thrown.CancellationToken);
    }

    [Fact]
    public async Task The_method_resumes_in_the_execution_context_it_was_called_in()
    {
        Ambient.Value = "caller";
        var gate = new TaskCompletionSource();
        var task = AmbientAfterAsync(gate.Task);

        CompleteFromBareThread(gate);

        Assert.Equal("caller", await task);
    }

    [Fact]
    public async Task Changes_the_synchronous_part_makes_to_its_contexts_do_not_leak_to_the_caller()
    {
        Ambient.Value = "caller";
        var callerContext = SynchronizationContext.Current;
        var gate = new TaskCompletionSource();

        var task = ChangeAmbientThenAwaitAsync(gate.Task);

        Assert.Equal("caller", Ambient.Value);
        Assert.Same(callerContext, SynchronizationContext.Current);
        gate.SetResult();
        await task;
    }

    [Fact]
    public void Every_async_method_of_the_engine_uses_a_precompiled_builder()
    {
        // A method without one works, but costs a fresh build process about a dozen JIT-compiled methods.
        var engine = typeof(Digest).Assembly;
        var builders = new HashSet<Type>
        {
            typeof(PrecompiledTaskMethodBuilder), typeof(PrecompiledTaskMethodBuilder<>),
            typeof(PrecompiledValueTaskMethodBuilder), typeof(PrecompiledValueTaskMethodBuilder<>),
        };
        const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;

        var asyncMethods = engine.GetTypes()
            .SelectMany(t => t.GetMethods(all))
            .Where(m => m.GetCustomAttribute<AsyncStateMachineAttribute>() is not null)
            .ToList();
        var without = asyncMethods
            .Where(m => m.GetCustomAttribute<AsyncMethodBuilderAttribute>()?.BuilderType is not { } builder || !builders.Contains(builder))
            .Select(m => $"{m.DeclaringType?.FullName}.{m.Name}")
            .ToList();

        Assert.True(asyncMethods.Count > 100, $"only {asyncMethods.Count} async methods found");
        Assert.Empty(without);
    }
}
