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
    }
}
