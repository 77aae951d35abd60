namespace Btrfs.Core
{
    using System.Globalization;

    /// <summary>A process that has a file open or mapped.</summary>
    public readonly record struct FileUser(int ProcessId, string Command, bool Mapped)
    {
        /// <summary>The process's working or root directory is there (not a file it has open).</summary>
        public bool WorkingDirectory { get; init; }

        /// <inheritdoc/>
        /// <remarks>
        /// This process is named as what it is to its user, this PowerShell (its command is dotnet or pwsh: a hostile
        /// review read "in use by dotnet" as another program), with what usually holds it here: an object kept in a
        /// variable, an open pipeline, or the current location.
        /// </remarks>
        public override string ToString() =>
            ProcessId == System.Environment.ProcessId
                ? $"this PowerShell itself (pid {ProcessId.ToString(CultureInfo.InvariantCulture)}, {(WorkingDirectory ? "its working directory is there" : (Mapped ? "mapped" : "open") + ": a file this session still holds, as a stream or a command still running in the pipeline")})"
                : $"{Command} (pid {ProcessId.ToString(CultureInfo.InvariantCulture)}, {(WorkingDirectory ? "working directory" : Mapped ? "mapped" : "open")})";
    }
}
