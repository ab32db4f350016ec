using System.Runtime.CompilerServices;

namespace VddkBuild.Threading;

/// <summary>
/// The heap home of an async method that awaited something unfinished: the boxed state machine, the execution
/// context it resumes in, and the task its callers hold. The precompiled method builders' counterpart of the
/// runtime's own state machine box, as a class of this assembly so that its code is in the ReadyToRun image (for a
/// value-type result the instantiation is still compiled at run time, as the task of that result type is).
/// </summary>
internal abstract class StateMachineBox
{
    private static readonly ContextCallback MoveNextInContext = static box => ((StateMachineBox)box!).StateMachine!.MoveNext();

    private IAsyncStateMachine? StateMachine { get; set; }
    private ExecutionContext? _context;

    protected StateMachineBox()
    {
        MoveNextAction = MoveNext;
    }

    /// <summary>The continuation handed to awaiters: resumes the state machine in its captured execution context.</summary>
    public Action MoveNextAction { get; }

    /// <summary>
    /// Takes the boxed copy of a state machine at its first unfinished await, with the execution context to resume it
    /// in. The builder inside that copy already holds this box, so the copy completes this box's task.
    /// </summary>
    public void Adopt(IAsyncStateMachine stateMachine)
    {
        _context = ExecutionContext.Capture();
        StateMachine = stateMachine;
    }

    private void MoveNext()
    {
        var context = _context;
        if (context is null)
        {
            StateMachine!.MoveNext();
        }
        else
        {
            ExecutionContext.Run(context, MoveNextInContext, this);
        }
    }

    /// <summary>Lets go of the state machine (and what its locals hold) once the method has finished.</summary>
    protected void Release()
    {
        StateMachine = null;
        _context = null;
    }
}

/// <summary>The box of a method whose task has no result.</summary>
internal sealed class VoidStateMachineBox : StateMachineBox
{
    private readonly TaskCompletionSource _completion = new();

    public Task Task => _completion.Task;

    public void SetResult()
    {
        Release();
        _completion.SetResult();
    }

    public void SetException(Exception exception)
    {
        Release();
        _completion.SetException(exception);
    }
}

/// <summary>The box of a method whose task has a result.</summary>
internal sealed class StateMachineBox<TResult> : StateMachineBox
{
    private readonly TaskCompletionSource<TResult> _completion = new();

    public Task<TResult> Task => _completion.Task;

    public void SetResult(TResult result)
    {
        Release();
        _completion.SetResult(result);
    }

    public void SetException(Exception exception)
    {
        Release();
        _completion.SetException(exception);
    }
}
