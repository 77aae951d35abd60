namespace Btrfs.Tests.Infrastructure
{
    using System;

    /// <summary>Runs an action when disposed: clean-up for a `using` declaration (an overlay to unmount, say).</summary>
    internal sealed class Disposer(Action action) : IDisposable
    {
        public void Dispose() => action();
    }
}
