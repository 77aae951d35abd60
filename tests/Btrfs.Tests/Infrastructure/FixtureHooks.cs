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
        /// <summary>A filesystem the machine could not make: the test is skipped with the reason, or fails in CI.</summary>
        [ModuleInitializer]
        internal static void Init() => LoopFileSystems.Unavailable = reason => Requires.That(false, reason);
    }
}
