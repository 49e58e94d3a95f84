from rbmcli.cli import main

main()
