namespace Btrfs.Commands
{
    using System.Management.Automation;
    using Btrfs.Kernel;

    /// <summary>
    /// The hidden PSPath of every object of this module that names a file (Btrfs.Types.ps1xml): the
    /// provider-qualified path, as Get-ChildItem gives it, so a piped object binds to -LiteralPath and
    /// reaches exactly the file it names. Provider-qualified, because PowerShell reads a backslash in a
    /// plain path as a separator: a file named "..\victim" would otherwise lead to ../victim.
    /// </summary>
    public static class PathBinding
    {
        /// <summary>The prefix Get-ChildItem gives its PSPath.</summary>
        public const string FileSystemPrefix = @"Microsoft.PowerShell.Core\FileSystem::";

        /// <summary>The CodeProperty's getter: the object's Path, provider-qualified (null when it has none).</summary>
        public static string? PSPath(PSObject instance) =>
            instance?.Properties["Path"]?.Value is string { Length: > 0 } path ? FileSystemPrefix + path : null;

        /// <summary>
        /// The Directory CodeProperty's getter: the directory of the object's Path, which the views group by,
        /// so "Directory" in a table is a property too (Group-Object Directory, Sort-Object Directory).
        /// An owning file that no mount reaches (no Path) says which subvolume holds it.
        /// </summary>
        public static string? Directory(PSObject instance)
        {
            if (instance?.Properties["Path"]?.Value is string { Length: > 0 } path)
            {
                return System.IO.Path.GetDirectoryName(path) ?? path;
            }

            return instance?.Properties["SubvolumeId"]?.Value is { } id
                ? $"(subvolume {id} {instance.Properties["SubvolumePath"]?.Value}: not reachable under a mount)"
                : null;
        }

        /// <summary>
        /// A path taken as given (no wildcards: it may name something that does not exist yet) as a file system
        /// path; null after writing the error (NotFileSystemPath for another provider, PathNotFound for a missing
        /// drive, InvalidArgument otherwise). A provider-qualified path (a piped object's PSPath) keeps a
        /// backslash in a name as part of the name.
        /// </summary>
        internal static string? UnresolvedFileSystemPath(PSCmdlet cmdlet, string given)
        {
            try
            {
                string path = cmdlet.SessionState.Path.GetUnresolvedProviderPathFromPSPath(given, out ProviderInfo provider, out _);
                if (provider.Name == "FileSystem")
                {
                    return Unambiguous(cmdlet, given, path) ? path : null;
                }

                cmdlet.WriteError(ErrorRecords.NotFileSystemPath(given, provider.Name));
            }
            catch (System.Exception ex) when (ex is ProviderNotFoundException or DriveNotFoundException or System.NotSupportedException or PSArgumentException or System.ArgumentException)
            {
                cmdlet.WriteError(ErrorRecords.FromResolution(given, ex));
            }

            return null;
        }

        /// <summary>
        /// PowerShell reads a backslash in a plain path as a separator ('deep/..\victim' is 'victim'), but on Linux
        /// it is a character of a name, and this module's objects carry such names (as a string, their Path is read
        /// the PowerShell way; piped, the object binds by its provider-qualified PSPath, which keeps the name).
        /// Where the path as written, backslash and all, names something that exists and PowerShell's reading is
        /// another path, which of the two is meant cannot be known: an AmbiguousBackslashPath error, and false.
        /// </summary>
        internal static bool Unambiguous(PSCmdlet cmdlet, string given, string resolved)
        {
            if (Ambiguity(cmdlet, given, resolved) is { } error)
            {
                cmdlet.WriteError(error);
                return false;
            }

            return true;
        }

        /// <summary>As <see cref="Unambiguous"/>: the error (for the caller to write, or to throw), or null.</summary>
        internal static ErrorRecord? Ambiguity(PSCmdlet cmdlet, string given, string resolved)
        {
            if (!given.Contains('\\', System.StringComparison.Ordinal) || given.Contains("::", System.StringComparison.Ordinal))
            {
                return null;
            }

            string literal = FromCurrentLocation(cmdlet, given);
            return literal == resolved || FileStatus.OfPath(literal, followLinks: false) is null
                ? null
                : ErrorRecords.AmbiguousBackslashPath(given, literal, resolved);
        }

        /// <summary>
        /// A filesystem path an object carries, made absolute against the current location (a hand-built
        /// object's relative path means where the user is, not the process's directory); backslashes stay
        /// characters of the name.
        /// </summary>
        internal static string FromCurrentLocation(PSCmdlet cmdlet, string path) =>
            System.IO.Path.IsPathRooted(path) ? path : System.IO.Path.Combine(cmdlet.SessionState.Path.CurrentFileSystemLocation.ProviderPath, path);
    }
}
