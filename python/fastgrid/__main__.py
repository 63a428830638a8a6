from fastgrid.cli import main

main()
