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
        /// <remarks>
        /// Null for one without a path (a legend line, an owner or a subvolume no mount reaches): piped on, a null
        /// -LiteralPath is PowerShell's validation error, and a subvolume binds by its Id where a cmdlet takes it whole.
        /// Not its text (tried, and undone: read back by Import-Clixml, the text is a plain string that bound -LiteralPath
        /// as a relative path, rewrote a file named like a legend line, and kept a read-back subvolume from binding by
        /// its Id; a hostile review).
        /// </remarks>
        public static string? PSPath(PSObject instance) =>
            instance?.Properties["Path"]?.Value is string { Length: > 0 } path ? FileSystemPrefix + path : null;

        /// <summary>The CodeProperty's getter of a result that is about its Destination (Invoke-BtrfsDedupe's): that path, provider-qualified.</summary>
        public static string? DestinationPSPath(PSObject instance) =>
            instance?.Properties["Destination"]?.Value is string { Length: > 0 } path ? FileSystemPrefix + path : null;

        /// <summary>
        /// The Directory CodeProperty's getter: the directory of the object's Path, which the views group by,
        /// so "Directory" in a table is a property too (Group-Object Directory, Sort-Object Directory).
        /// An owning file that no mount reaches (no Path) says which subvolume holds it.
        /// </summary>
        public static string? Directory(PSObject instance)
        {
            return Btrfs.Core.DirectoryLabel.Of(instance?.Properties["Path"]?.Value as string, instance?.Properties["SubvolumeId"]?.Value, instance?.Properties["SubvolumePath"]?.Value, instance?.Properties["WhyNoPath"]?.Value);
        }

        /// <summary>
        /// A path taken as given (no wildcards: it may name something that does not exist yet) as a file system
        /// path; null after writing the error (NotFileSystemPath for another provider, PathNotFound for a missing
        /// drive, InvalidArgument otherwise). A provider-qualified path (a piped object's PSPath) keeps a
        /// backslash in a name as part of the name.
        /// </summary>
        internal static string? UnresolvedFileSystemPath(PSCmdlet cmdlet, string given)
        {
            if (UnresolvedFileSystemPath(cmdlet, given, out string path) is { } error)
            {
                Preferences.WriteError(cmdlet, error);
                return null;
            }

            return path;
        }

        /// <summary>
        /// As <see cref="UnresolvedFileSystemPath(PSCmdlet, string)"/>, returning the error instead of writing it
        /// (for a parameter whose error ends the command, such as -StatePath or -Destination): another provider's
        /// path ('Env:/x', 'Variable:y') is never taken as a file under the process's working directory.
        /// </summary>
        internal static ErrorRecord? UnresolvedFileSystemPath(PSCmdlet cmdlet, string given, out string path)
        {
            path = string.Empty;
            if (PipedPathAttribute.NamesNoFile(given) is string type)
            {
                return ErrorRecords.ObjectNamesNoFile(given, type);
            }

            if (given.Contains('\0', System.StringComparison.Ordinal))
            {
                // No name holds a NUL: said here, not as .NET's ArgumentException from wherever the path goes next.
                return ErrorRecords.NulInPath(given);
            }

            try
            {
                string resolved = cmdlet.SessionState.Path.GetUnresolvedProviderPathFromPSPath(given, out ProviderInfo provider, out _);
                if (provider.Name != "FileSystem")
                {
                    return ErrorRecords.NotFileSystemPath(given, provider.Name);
                }

                path = resolved;
                return Ambiguity(cmdlet, given, resolved);
            }
            catch (System.Exception ex) when (ex is ProviderNotFoundException or DriveNotFoundException or System.NotSupportedException or PSArgumentException or System.ArgumentException)
            {
                return ErrorRecords.FromResolution(given, ex);
            }
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
                Preferences.WriteError(cmdlet, error);
                return false;
            }

            return true;
        }

        /// <summary>As <see cref="Unambiguous"/>: the error (for the caller to write, or to throw), or null.</summary>
        internal static ErrorRecord? Ambiguity(PSCmdlet cmdlet, string given, string resolved)
        {
            if (AsWritten(cmdlet, given) is not string literal || literal == resolved || FileStatus.OfPath(literal, followLinks: false) is null)
            {
                return ParentAmbiguity(cmdlet, given, pattern: false);
            }

            return ErrorRecords.AmbiguousBackslashPath(given, literal, resolved);
        }

        /// <summary>
        /// PowerShell reads '..' by the text ('lnk/../x' and 'missing/../x' are both 'x'), the kernel from the directory
        /// it is in: where a symbolic link leads, nowhere where a name is missing. Where the path as written (for a
        /// pattern, its part before the first wildcard) holds '..' and the kernel's reading leads nowhere or to another
        /// directory than PowerShell's, which is meant cannot be known: an AmbiguousParentPath error (a hostile review:
        /// Remove-BtrfsSubvolume -LiteralPath 'missing/../T' deleted T, which `btrfs subvolume delete` and ls do not
        /// find). Null where the path holds no '..', the two agree, or PowerShell's reading leads nowhere either.
        /// </summary>
        internal static ErrorRecord? ParentAmbiguity(PSCmdlet cmdlet, string given, bool pattern)
        {
            // A provider-qualified path (a piped object's PSPath) PowerShell leaves as it is, '..' and backslashes too: the
            // kernel reads it as it is, so there is nothing to tell apart.
            if (cmdlet.SessionState.Path.IsProviderQualified(given))
            {
                return null;
            }

            string[] parts = given.Replace('\\', '/').Split('/');
            int end = pattern ? System.Array.FindIndex(parts, WildcardPattern.ContainsWildcardCharacters) : -1;
            end = end < 0 ? parts.Length : end;
            if (end < parts.Length && System.Array.IndexOf(parts, "..", end) >= 0)
            {
                // '..' after a wildcard: PowerShell takes it away with the name before it by the text, before the wildcard
                // is matched ('nosuch*/../T' is 'T' though nothing matches), where the kernel would go up from each match.
                return ErrorRecords.AmbiguousParentPath(given, null, string.Empty, kernelFindsNothing: false);
            }

            int last = end == 0 ? -1 : System.Array.LastIndexOf(parts, "..", end - 1);
            if (last < 0 || AbsoluteAsWritten(cmdlet, string.Join('/', parts, 0, last + 1)) is not string asWritten)
            {
                return null;
            }

            string textual = System.IO.Path.GetFullPath(asWritten);
            if (FileStatus.OfPath(textual, followLinks: true) is not FileStatus powerShells)
            {
                return null;
            }

            FileStatus? kernels = FileStatus.OfPath(asWritten, followLinks: true);
            return kernels is FileStatus k && k.SameInode(powerShells) ? null : ErrorRecords.AmbiguousParentPath(given, asWritten, textual, kernels is null);
        }

        /// <summary>
        /// A path as written made absolute as PowerShell would (the current location, '~', a filesystem drive), with its
        /// '..' and '.' left in for the kernel to read; null for another provider's drive.
        /// </summary>
        private static string? AbsoluteAsWritten(PSCmdlet cmdlet, string path)
        {
            string first = path.Split('/')[0];
            if (first == "~")
            {
                return cmdlet.SessionState.Provider.GetOne("FileSystem").Home is { Length: > 0 } home ? home.TrimEnd('/') + path[1..] : null;
            }

            if (first.Length > 1 && first.EndsWith(':'))
            {
                try
                {
                    PSDriveInfo drive = cmdlet.SessionState.Drive.Get(first[..^1]);
                    return drive.Provider.Name == "FileSystem" ? drive.Root.TrimEnd('/') + "/" + path[first.Length..].TrimStart('/') : null;
                }
                catch (System.Exception ex) when (ex is DriveNotFoundException or System.ArgumentException)
                {
                    return null;
                }
            }

            return FromCurrentLocation(cmdlet, path);
        }

        /// <summary>
        /// As <see cref="Ambiguity"/> for a wildcard pattern (-Path): ambiguous where, read as written, a name of it that
        /// holds a backslash or a wildcard matches a name with a backslash that exists. PowerShell's expansion reads such
        /// a name's backslash as a separator and goes elsewhere: 'a?b.bin' matched 'a\b.bin' and came back as 'a/b.bin',
        /// another file (before, only a pattern with a backslash of its own was checked; a hostile test).
        /// </summary>
        internal static ErrorRecord? PatternAmbiguity(PSCmdlet cmdlet, string pattern)
        {
            if (ParentAmbiguity(cmdlet, pattern, pattern: true) is { } dotDot)
            {
                return dotDot;
            }

            // Both readings: a backslash a character of a name (as written), and a separator (as PowerShell reads it: 'T:\a?b'
            // is 'T:/a?b'); a provider-qualified pattern by the path after its '::', which PowerShell's expansion reads the
            // same way (before, such patterns were not looked at; a hostile test).
            var readings = new System.Collections.Generic.List<string>();
            if (cmdlet.SessionState.Path.IsProviderQualified(pattern))
            {
                string rest = pattern[(pattern.IndexOf("::", System.StringComparison.Ordinal) + 2)..];
                readings.Add(FromCurrentLocation(cmdlet, rest));
                readings.Add(FromCurrentLocation(cmdlet, rest.Replace('\\', '/')));
            }
            else
            {
                if (AsWritten(cmdlet, pattern) is string literal)
                {
                    readings.Add(literal);
                }

                if (AbsoluteAsWritten(cmdlet, pattern.Replace('\\', '/')) is string read)
                {
                    readings.Add(read);
                }
            }

            foreach (string reading in System.Linq.Enumerable.Distinct(readings, System.StringComparer.Ordinal))
            {
                if (BackslashNameMatched(cmdlet, pattern, reading) is { } error)
                {
                    return error;
                }
            }

            return null;
        }

        /// <summary>
        /// The first name with a backslash that a name of <paramref name="reading"/> holding a backslash or a wildcard
        /// matches, as an error: among directories where a directory is looked for (a name before the last), and a hidden
        /// name only where the pattern's name begins with '.', as PowerShell's expansion matches them.
        /// </summary>
        private static ErrorRecord? BackslashNameMatched(PSCmdlet cmdlet, string pattern, string reading)
        {
            string[] parts = reading.Split('/');
            for (int at = 1; at < parts.Length; at++)
            {
                if (!parts[at].Contains('\\', System.StringComparison.Ordinal) && !WildcardPattern.ContainsWildcardCharacters(parts[at]))
                {
                    continue;
                }

                string parent = string.Join('/', parts, 0, at);
                var name = new WildcardPattern(parts[at], WildcardOptions.None);
                bool last = at == parts.Length - 1 || (at == parts.Length - 2 && parts[^1].Length == 0);
                bool hidden = parts[at].StartsWith('.');
                System.Collections.Generic.IEnumerable<string> parents;
                try
                {
                    parents = WildcardPattern.ContainsWildcardCharacters(parent)
                        ? cmdlet.SessionState.Path.GetResolvedProviderPathFromPSPath(parent, out _)
                        : new[] { parent.Length == 0 ? "/" : parent };
                }
                catch (System.Exception ex) when (ex is ItemNotFoundException or System.ArgumentException or System.NotSupportedException or System.IO.IOException or PSInvalidOperationException)
                {
                    return null;
                }

                foreach (string dir in parents)
                {
                    try
                    {
                        foreach (string entry in System.IO.Directory.EnumerateFileSystemEntries(dir))
                        {
                            string n = System.IO.Path.GetFileName(entry);
                            if (n.Contains('\\', System.StringComparison.Ordinal) && (hidden || !n.StartsWith('.')) && name.IsMatch(n) && (last || System.IO.Directory.Exists(entry)))
                            {
                                return ErrorRecords.AmbiguousBackslashPath(pattern, entry, null);
                            }
                        }
                    }
                    catch (System.Exception ex) when (ex is System.IO.IOException or System.UnauthorizedAccessException)
                    {
                    }
                }
            }

            return null;
        }

        /// <summary>
        /// The file system path <paramref name="given"/> names read as written: a backslash a character of a name, as
        /// the kernel reads it (resolved by PowerShell with the backslashes held out of its reach, so a drive, '~' and
        /// the current location apply as always). Null where the path has no backslash, is provider-qualified (a
        /// piped object's PSPath, which keeps backslashes already), or cannot be resolved.
        /// </summary>
        private static string? AsWritten(PSCmdlet cmdlet, string given)
        {
            // Provider-qualified as PowerShell reads it (not merely holding "::", as './p::q/a\b' does).
            if (!given.Contains('\\', System.StringComparison.Ordinal) || cmdlet.SessionState.Path.IsProviderQualified(given))
            {
                return null;
            }

            // A private-use character the path does not hold: no separator, no wildcard.
            char held = '\uE000';
            while (given.Contains(held, System.StringComparison.Ordinal))
            {
                held++;
            }

            try
            {
                string path = cmdlet.SessionState.Path.GetUnresolvedProviderPathFromPSPath(given.Replace('\\', held), out ProviderInfo provider, out _);
                return provider.Name == "FileSystem" ? path.Replace(held, '\\') : null;
            }
            catch (System.Exception ex) when (ex is ProviderNotFoundException or DriveNotFoundException or System.NotSupportedException or PSArgumentException or System.ArgumentException)
            {
                return null;
            }
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
