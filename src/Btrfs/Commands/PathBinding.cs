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
    }
}
