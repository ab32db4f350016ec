using System.Collections.Concurrent;
using Microsoft.AspNetCore.Http;
using VddkBuild.TestSupport.Registry;

namespace VddkBuild.TestSupport.Faults;

/// <summary>A fault applied to the first <see cref="Times"/> requests that <see cref="Matches"/> accepts.</summary>
public sealed class FaultRule(string name, Func<HttpRequest, bool> matches, RegistryFault fault, int times = 1)
{
    private int _hits;

    public string Name { get; } = name;

    public Func<HttpRequest, bool> Matches { get; } = matches;

    public RegistryFault Fault { get; } = fault;

    public int Times { get; } = times;

    /// <summary>How often the fault was injected so far.</summary>
    public int Hits => Volatile.Read(ref _hits);

    internal bool TryClaim()
    {
        if (Interlocked.Increment(ref _hits) <= Times)
        {
            return true;
        }
        Interlocked.Decrement(ref _hits);
        return false;
    }
}

/// <summary>One injected fault, for assertions and the scenario table.</summary>
public sealed record InjectedFault(string Rule, string Fault, string Method, string Path, DateTimeOffset At);

/// <summary>
/// A loopback reverse proxy before a real registry that injects faults by rule: connection resets mid-upload,
/// 5xx/429 answers, dripping or truncated response bodies, held requests, or custom actions (restarting the
/// registry). Requests are recorded like <see cref="CountingProxy"/>'s; an upstream that cannot be reached is
/// answered 502, as a router in front of a registry does.
/// </summary>
public sealed class FaultProxy : IAsyncDisposable
{
    private readonly CountingProxy _proxy;
    private readonly ReverseProxyForwarder _forwarder;
    private readonly ConcurrentQueue<FaultRule> _rules = new();
    private readonly ConcurrentQueue<InjectedFault> _injected = new();

    private FaultProxy(CountingProxy proxy, Uri upstream)
    {
        _proxy = proxy;
        _forwarder = new ReverseProxyForwarder(upstream);
        _proxy.Fault = HandleAsync;
    }

    public static async Task<FaultProxy> StartAsync(Uri upstream) => new(await CountingProxy.StartAsync(upstream), upstream);

    /// <summary><c>127.0.0.1:port</c> of the proxy: the registry part of references that should meet the faults.</summary>
    public string Authority => _proxy.Authority;

    public IReadOnlyList<ProxiedRequest> Requests => _proxy.Requests;

    public IReadOnlyList<InjectedFault> Injected => [.. _injected];

    /// <summary>Adds a rule; rules are tried in the order added, the first that matches and has hits left applies.</summary>
    public FaultRule Add(string name, Func<HttpRequest, bool> matches, RegistryFault fault, int times = 1)
    {
        var rule = new FaultRule(name, matches, fault, times);
        _rules.Enqueue(rule);
        return rule;
    }

    /// <summary>Removes every rule: later requests pass through untouched.</summary>
    public void Clear() => _rules.Clear();

    public void ResetRecords()
    {
        _proxy.Reset();
        _injected.Clear();
    }

    private async Task<bool> HandleAsync(HttpContext context)
    {
        foreach (var rule in _rules)
        {
            if (rule.Matches(context.Request) && rule.TryClaim())
            {
                _injected.Enqueue(new InjectedFault(rule.Name, rule.Fault.Description, context.Request.Method, context.Request.Path.Value ?? "/", DateTimeOffset.UtcNow));
                await GuardAsync(context, () => rule.Fault.ApplyAsync(context, _forwarder));
                return true;
            }
        }
        await GuardAsync(context, () => _forwarder.ForwardAsync(context));
        return true;
    }

    private static async Task GuardAsync(HttpContext context, Func<Task> action)
    {
        try
        {
            await action();
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException or OperationCanceledException)
        {
            // The upstream is down or broke mid-answer (or the client went away).
            if (!context.Response.HasStarted && !context.RequestAborted.IsCancellationRequested)
            {
                context.Response.Clear();
                context.Response.StatusCode = StatusCodes.Status502BadGateway;
                return;
            }
            context.Abort();
        }
    }

    public ValueTask DisposeAsync()
    {
        _forwarder.Dispose();
        return _proxy.DisposeAsync();
    }
}
