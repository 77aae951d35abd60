namespace Btrfs.Commands
{
    /// <summary>
    /// Where each cmdlet's online help is: its own page in this project's documentation (the markdown the
    /// MAML help is generated from). Every cmdlet's HelpUri is <see cref="Pages"/> + its name + ".md", and
    /// the help's "online version" (the first related link, which Get-Help -Online opens) is the same.
    /// </summary>
    public static class HelpLinks
    {
        /// <summary>The folder of the help pages in the repository.</summary>
        public const string Pages = "https://github.com/btrfs-pwsh/Btrfs/blob/main/src/Help/en-US/";
    }
}
