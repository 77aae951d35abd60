namespace Btrfs.Commands
{
    using System.Management.Automation;
    using Btrfs.Core;
    using Btrfs.Kernel;

    /// <summary>Test-BtrfsSwapfile: would swapon accept the file and keep it safe? One [bool] per file, or with -Detailed every rule and the reason.</summary>
    [Cmdlet(VerbsDiagnostic.Test, "BtrfsSwapfile", DefaultParameterSetName = LiteralPathSet, HelpUri = HelpLinks.Pages + "Test-BtrfsSwapfile.md")]
    [OutputType(typeof(bool), typeof(SwapfileStatus))]
    public sealed class TestBtrfsSwapfileCommand : FileCmdletBase
    {
        /// <summary>One answer per input, as Test-Path gives.</summary>
        protected override bool EachFileOncePerPipeline => false;

        /// <summary>Emit a SwapfileStatus object per file instead of a boolean.</summary>
        [Parameter]
        public SwitchParameter Detailed { get; set; }

        /// <inheritdoc/>
        protected override void ProcessFile(string path)
        {
            SwapfileStatus status = SwapfileInspector.Inspect(path);
            WriteVerbose($"{path}: {status.ReasonText}");
            WriteObject(Detailed.IsPresent ? status : status.IsValid);
        }
    }
}
