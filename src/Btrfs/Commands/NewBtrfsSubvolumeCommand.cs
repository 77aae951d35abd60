namespace Btrfs.Commands
{
    using System.Management.Automation;
    using Btrfs.Core;
    using Btrfs.Kernel;

    /// <summary>New-BtrfsSubvolume: a new empty subvolume (SUBVOL_CREATE_V2), NOCOW from the start with -NoCow.</summary>
    [Cmdlet(VerbsCommon.New, "BtrfsSubvolume", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low, HelpUri = HelpLinks.Pages + "New-BtrfsSubvolume.md")]
    [OutputType(typeof(BtrfsSubvolumeInfo))]
    public sealed class NewBtrfsSubvolumeCommand : PSCmdlet
    {
        /// <summary>The new subvolume's path (its parent directory must exist, on btrfs; the name must be free), used as given; -LiteralPath is the same parameter.</summary>
        [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true)]
        [Alias("LiteralPath", "LP")]
        [ValidateNotNullOrEmpty]
        [PipedPath]
        public string[] Path { get; set; } = System.Array.Empty<string>();

        /// <summary>Give the subvolume's root directory NOCOW before anything is in it: every file made there is NOCOW (VM images, databases).</summary>
        [Parameter]
        public SwitchParameter NoCow { get; set; }

        /// <inheritdoc/>
        protected override void ProcessRecord()
        {
            foreach (string given in Path)
            {
                if (PathBinding.UnresolvedFileSystemPath(this, given) is not string path)
                {
                    continue;
                }

                try
                {
                    // Checked first, so -WhatIf and the prompt are only for a subvolume that can be made.
                    using SubvolumeCreator planned = SubvolumeCreator.PlanCreate(path);
                    if (!Preferences.ShouldProcess(this, planned.Full, NoCow.IsPresent ? "Create a subvolume with NOCOW for every file made in it" : "Create a subvolume"))
                    {
                        continue;
                    }

                    WriteObject(planned.Create(NoCow.IsPresent));
                }
                catch (FileOperationException ex)
                {
                    WriteError(ErrorRecords.From(ex, path));
                }
            }
        }
    }
}
