#Requires -Version 7.4
<#
.SYNOPSIS
    Builds, tests, documents and packages the Btrfs module. A thin wrapper over dotnet commands.
.EXAMPLE
    ./build.ps1                 # Build: bin/Btrfs.dll, then Import-Module ./Btrfs.psd1
.EXAMPLE
    ./build.ps1 -Task Test      # the test suite (needs root for the loop-mounted filesystems)
.EXAMPLE
    ./build.ps1 -Task Test -NoBuild -Filter 'FullyQualifiedName~DedupeTests'   # some tests, built already
.EXAMPLE
    ./build.ps1 -Task Package   # out/Btrfs/<version>/, ready for Publish-PSResource
#>
[CmdletBinding()]
param(
    [ValidateSet('Build', 'Test', 'Help', 'Package')]
    [string] $Task = 'Build',

    [ValidateSet('Debug', 'Release')]
    [string] $Configuration = 'Release',

    # -Task Test: only the tests this dotnet test filter selects.
    [string] $Filter,

    # -Task Test: do not build first.
    [switch] $NoBuild
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
$root = $PSScriptRoot

# The arguments go to dotnet as one string array: PowerShell would split a bare -t:Package into
# "-t:" and "Package" when passing it on through $args.
function Invoke-Dotnet([string[]] $Arguments) {
    & dotnet @Arguments
    if ($LASTEXITCODE -ne 0) { throw "dotnet $($Arguments -join ' ') failed with exit code $LASTEXITCODE" }
}

$project = Join-Path $root 'src/Btrfs/Btrfs.csproj'
switch ($Task) {
    'Build' {
        Invoke-Dotnet @('build', $project, '-c', $Configuration)
    }
    'Test' {
        # The README's test command (with -Filter and -NoBuild when given).
        $arguments = @('test', (Join-Path $root 'Btrfs.sln'), '-c', $Configuration)
        if ($Filter) { $arguments += @('--filter', $Filter) }
        if ($NoBuild) { $arguments += '--no-build' }
        Invoke-Dotnet $arguments
    }
    'Help' {
        # The parameters' facts come from the cmdlets in bin/Btrfs.dll; the markdown gives the words.
        Invoke-Dotnet @('build', $project, '-c', $Configuration)
        Invoke-Dotnet @('run', '--project', (Join-Path $root 'src/Btrfs.HelpGen'), '--', (Join-Path $root 'src/Help/en-US'), (Join-Path $root 'en-US/Btrfs.dll-Help.xml'), (Join-Path $root 'bin/Btrfs.dll'))
    }
    'Package' {
        # The dotnet target lays out out/Btrfs/<version>/ (tested in CI); this only calls it.
        Invoke-Dotnet @('build', $project, '-c', 'Release', '-t:Package')
    }
}
