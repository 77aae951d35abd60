namespace Btrfs.Core
{
    using System.Globalization;

    /// <summary>A process that has a file open or mapped.</summary>
    public readonly record struct FileUser(int ProcessId, string Command, bool Mapped)
    {
        /// <summary>The process's working or root directory is there (not a file it has open).</summary>
        public bool WorkingDirectory { get; init; }

        /// <inheritdoc/>
        public override string ToString() =>
            $"{Command} (pid {ProcessId.ToString(CultureInfo.InvariantCulture)}, {(WorkingDirectory ? "working directory" : Mapped ? "mapped" : "open")})";
    }
}
