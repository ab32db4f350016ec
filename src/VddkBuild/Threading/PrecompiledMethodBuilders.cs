using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace VddkBuild.Threading;

// Why these exist: a build runs the publish path once, in a fresh MSBuild process. The runtime's own async method
// builders are generic types of System.Private.CoreLib instantiated over this assembly's state machines, which no
// ReadyToRun image can hold, so every async method costs the JIT about a dozen methods (Start, the await plumbing for
// each awaiter type, the state machine box) on first use: about 500 of the 1,340 methods a cold PublishVddk compiled.
// These builders are generic types of this assembly, which ReadyToRun compiles with the rest of it. Every async
// method and lambda of the engine opts in with [AsyncMethodBuilder(typeof(...))] (a unit test checks it); callers see
// an ordinary Task or ValueTask.
//
// What is left to the JIT is AwaitOnCompleted/AwaitUnsafeOnCompleted, one per await site's awaiter type: the awaiters
// are CoreLib types, and an instantiation over a type outside the version bubble is not precompiled. That is also why
// the box is created in those methods and not in a helper: a helper called only from JIT-compiled code is never
// discovered by crossgen2, so it would be JIT-compiled too.
//
// Behaviour matches the runtime's builders (execution context captured at the first unfinished await and flowed to
// every resumption; the caller's execution and synchronization contexts restored when the synchronous part returns;
// continuations of the returned task run inline) with one difference: a method that throws an
// OperationCanceledException returns a faulted task rather than a canceled one. Awaiting it throws that same
// exception either way, which is all this code base does with such tasks.

/// <summary>What the four builders share: running the synchronous part of a method in its caller's contexts.</summary>
internal static class MethodBuilderCore
{
    public static void Start<TStateMachine>(ref TStateMachine stateMachine)
        where TStateMachine : IAsyncStateMachine
    {
        var synchronizationContext = SynchronizationContext.Current;
        var executionContext = ExecutionContext.Capture();
        try
        {
            stateMachine.MoveNext();
        }
        finally
        {
            if (!ReferenceEquals(SynchronizationContext.Current, synchronizationContext))
            {
                SynchronizationContext.SetSynchronizationContext(synchronizationContext);
            }
            if (executionContext is not null && !ReferenceEquals(ExecutionContext.Capture(), executionContext))
            {
                ExecutionContext.Restore(executionContext);
            }
        }
    }
}

/// <summary>Builds the <see cref="Task"/> of an async method; see the file's opening comment.</summary>
[StructLayout(LayoutKind.Auto)]
public struct PrecompiledTaskMethodBuilder
{
    private VoidStateMachineBox? _box;
    private Exception? _exception;

    public static PrecompiledTaskMethodBuilder Create() => default;

    public readonly Task Task => _box?.Task ?? (_exception is null ? Task.CompletedTask : Task.FromException(_exception));

    public readonly void Start<TStateMachine>(ref TStateMachine stateMachine)
        where TStateMachine : IAsyncStateMachine => MethodBuilderCore.Start(ref stateMachine);

    public readonly void SetStateMachine(IAsyncStateMachine stateMachine)
    {
    }

    public void AwaitOnCompleted<TAwaiter, TStateMachine>(ref TAwaiter awaiter, ref TStateMachine stateMachine)
        where TAwaiter : INotifyCompletion
        where TStateMachine : IAsyncStateMachine
    {
        if (_box is null)
        {
            _box = new VoidStateMachineBox();
            _box.Adopt(stateMachine); // boxes a copy of the state machine whose builder already holds _box
        }
        awaiter.OnCompleted(_box.MoveNextAction);
    }

    public void AwaitUnsafeOnCompleted<TAwaiter, TStateMachine>(ref TAwaiter awaiter, ref TStateMachine stateMachine)
        where TAwaiter : ICriticalNotifyCompletion
        where TStateMachine : IAsyncStateMachine
    {
        if (_box is null)
        {
            _box = new VoidStateMachineBox();
            _box.Adopt(stateMachine); // boxes a copy of the state machine whose builder already holds _box
        }
        awaiter.UnsafeOnCompleted(_box.MoveNextAction);
    }

    public readonly void SetResult() => _box?.SetResult();

    public void SetException(Exception exception)
    {
        if (_box is null)
        {
            _exception = exception;
        }
        else
        {
            _box.SetException(exception);
        }
    }
}

/// <summary>Builds the <see cref="Task{TResult}"/> of an async method; see the file's opening comment.</summary>
[StructLayout(LayoutKind.Auto)]
public struct PrecompiledTaskMethodBuilder<TResult>
{
    private StateMachineBox<TResult>? _box;
    private Exception? _exception;
    private TResult _result;

    public static PrecompiledTaskMethodBuilder<TResult> Create() => default;

    public readonly Task<TResult> Task => _box?.Task ?? (_exception is null ? System.Threading.Tasks.Task.FromResult(_result) : System.Threading.Tasks.Task.FromException<TResult>(_exception));

    public readonly void Start<TStateMachine>(ref TStateMachine stateMachine)
        where TStateMachine : IAsyncStateMachine => MethodBuilderCore.Start(ref stateMachine);

    public readonly void SetStateMachine(IAsyncStateMachine stateMachine)
    {
    }

    public void AwaitOnCompleted<TAwaiter, TStateMachine>(ref TAwaiter awaiter, ref TStateMachine stateMachine)
        where TAwaiter : INotifyCompletion
        where TStateMachine : IAsyncStateMachine
    {
        if (_box is null)
        {
            _box = new StateMachineBox<TResult>();
            _box.Adopt(stateMachine); // boxes a copy of the state machine whose builder already holds _box
        }
        awaiter.OnCompleted(_box.MoveNextAction);
    }

    public void AwaitUnsafeOnCompleted<TAwaiter, TStateMachine>(ref TAwaiter awaiter, ref TStateMachine stateMachine)
        where TAwaiter : ICriticalNotifyCompletion
        where TStateMachine : IAsyncStateMachine
    {
        if (_box is null)
        {
            _box = new StateMachineBox<TResult>();
            _box.Adopt(stateMachine); // boxes a copy of the state machine whose builder already holds _box
        }
        awaiter.UnsafeOnCompleted(_box.MoveNextAction);
    }

    public void SetResult(TResult result)
    {
        if (_box is null)
        {
            _result = result;
        }
        else
        {
            _box.SetResult(result);
        }
    }

    public void SetException(Exception exception)
    {
        if (_box is null)
        {
            _exception = exception;
        }
        else
        {
            _box.SetException(exception);
        }
    }
}

/// <summary>Builds the <see cref="ValueTask"/> of an async method; see the file's opening comment.</summary>
[StructLayout(LayoutKind.Auto)]
public struct PrecompiledValueTaskMethodBuilder
{
    private VoidStateMachineBox? _box;
    private Exception? _exception;

    public static PrecompiledValueTaskMethodBuilder Create() => default;

    public readonly ValueTask Task => _box is not null ? new ValueTask(_box.Task) : _exception is null ? default : ValueTask.FromException(_exception);

    public readonly void Start<TStateMachine>(ref TStateMachine stateMachine)
        where TStateMachine : IAsyncStateMachine => MethodBuilderCore.Start(ref stateMachine);

    public readonly void SetStateMachine(IAsyncStateMachine stateMachine)
    {
    }

    public void AwaitOnCompleted<TAwaiter, TStateMachine>(ref TAwaiter awaiter, ref TStateMachine stateMachine)
        where TAwaiter : INotifyCompletion
        where TStateMachine : IAsyncStateMachine
    {
        if (_box is null)
        {
            _box = new VoidStateMachineBox();
            _box.Adopt(stateMachine); // boxes a copy of the state machine whose builder already holds _box
        }
        awaiter.OnCompleted(_box.MoveNextAction);
    }

    public void AwaitUnsafeOnCompleted<TAwaiter, TStateMachine>(ref TAwaiter awaiter, ref TStateMachine stateMachine)
        where TAwaiter : ICriticalNotifyCompletion
        where TStateMachine : IAsyncStateMachine
    {
        if (_box is null)
        {
            _box = new VoidStateMachineBox();
            _box.Adopt(stateMachine); // boxes a copy of the state machine whose builder already holds _box
        }
        awaiter.UnsafeOnCompleted(_box.MoveNextAction);
    }

    public readonly void SetResult() => _box?.SetResult();

    public void SetException(Exception exception)
    {
        if (_box is null)
        {
            _exception = exception;
        }
        else
        {
            _box.SetException(exception);
        }
    }
}

/// <summary>Builds the <see cref="ValueTask{TResult}"/> of an async method; see the file's opening comment.</summary>
[StructLayout(LayoutKind.Auto)]
public struct PrecompiledValueTaskMethodBuilder<TResult>
{
    private StateMachineBox<TResult>? _box;
    private Exception? _exception;
    private TResult _result;

    public static PrecompiledValueTaskMethodBuilder<TResult> Create() => default;

    public readonly ValueTask<TResult> Task => _box is not null ? new ValueTask<TResult>(_box.Task) : _exception is null ? new ValueTask<TResult>(_result) : ValueTask.FromException<TResult>(_exception);

    public readonly void Start<TStateMachine>(ref TStateMachine stateMachine)
        where TStateMachine : IAsyncStateMachine => MethodBuilderCore.Start(ref stateMachine);

    public readonly void SetStateMachine(IAsyncStateMachine stateMachine)
    {
    }

    public void AwaitOnCompleted<TAwaiter, TStateMachine>(ref TAwaiter awaiter, ref TStateMachine stateMachine)
        where TAwaiter : INotifyCompletion
        where TStateMachine : IAsyncStateMachine
    {
        if (_box is null)
        {
            _box = new StateMachineBox<TResult>();
            _box.Adopt(stateMachine); // boxes a copy of the state machine whose builder already holds _box
        }
        awaiter.OnCompleted(_box.MoveNextAction);
    }

    public void AwaitUnsafeOnCompleted<TAwaiter, TStateMachine>(ref TAwaiter awaiter, ref TStateMachine stateMachine)
        where TAwaiter : ICriticalNotifyCompletion
        where TStateMachine : IAsyncStateMachine
    {
        if (_box is null)
        {
            _box = new StateMachineBox<TResult>();
            _box.Adopt(stateMachine); // boxes a copy of the state machine whose builder already holds _box
        }
        awaiter.UnsafeOnCompleted(_box.MoveNextAction);
    }

    public void SetResult(TResult result)
    {
        if (_box is null)
        {
            _result = result;
        }
        else
        {
            _box.SetResult(result);
        }
    }

    public void SetException(Exception exception)
    {
        if (_box is null)
        {
            _exception = exception;
        }
        else
        {
            _box.SetException(exception);
        }
    }
}
