module newsroom.example/stages/region

go 1.24
