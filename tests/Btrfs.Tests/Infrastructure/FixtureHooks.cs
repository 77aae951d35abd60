namespace Btrfs.Tests.Infrastructure
{
    using System.Runtime.CompilerServices;
    using Btrfs.Kernel;
    using Xunit;

    /// <summary>The shared loop-filesystem fixture as xunit's collection fixture.</summary>
    [CollectionDefinition(Name)]
    public sealed class FileSystemCollection : ICollectionFixture<LoopFileSystems>
    {
        public const string Name = "Loop filesystems";
    }

    /// <summary>Wires the fixture into xunit when the test assembly loads.</summary>
    internal static class FixtureHooks
    {
        /// <summary>
        /// A filesystem the machine could not make: the test is skipped with the reason, or fails in CI. And threads
        /// for the pool from the start: the test classes that run side by side block pool threads (runspaces, child
        /// processes), and a Ctrl+C (PowerShell.BeginStop) or a progress hook's task waiting for the pool to grow
        /// (one thread per half second) would come seconds late on a 2-core machine.
        /// </summary>
        [ModuleInitializer]
        internal static void Init()
        {
            LoopFileSystems.Unavailable = reason => Requires.That(false, reason);
            System.Threading.ThreadPool.GetMinThreads(out int workers, out int io);
            System.Threading.ThreadPool.SetMinThreads(System.Math.Max(workers, 32), System.Math.Max(io, 32));
        }
    }
}
