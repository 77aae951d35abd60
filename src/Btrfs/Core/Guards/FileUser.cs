namespace Btrfs.Core
{
    using System.Globalization;

    /// <summary>A process that has a file open or mapped.</summary>
    public readonly record struct FileUser(int ProcessId, string Command, bool Mapped)
    {
        /// <inheritdoc/>
        public override string ToString() =>
            $"{Command} (pid {ProcessId.ToString(CultureInfo.InvariantCulture)}, {(Mapped ? "mapped" : "open")})";
    }
}
