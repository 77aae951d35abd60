namespace Btrfs.Tests.Infrastructure
{
    using System;

    /// <summary>A loop device bound to a file for a test (losetup), detached when disposed.</summary>
    internal sealed class LoopDevice : IDisposable
    {
        private LoopDevice(string name) => Name = name;

        /// <summary>/dev/loopN.</summary>
        internal string Name { get; }

        /// <summary>Binds the first free loop device to <paramref name="file"/> (read-only when the file is).</summary>
        internal static LoopDevice Attach(string file, bool readOnly = false) =>
            new(readOnly ? Shell.Run("losetup", "-f", "--show", "-r", file).Trim() : Shell.Run("losetup", "-f", "--show", file).Trim());

        public void Dispose() => Shell.Try("losetup", "-d", Name);
    }
}
